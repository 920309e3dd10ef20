"""Train one of the demo's runs (`glass.toy.demo.RUNS`) on a finished demo's generated GLASS data and score it on
`val` and on the `repeated` split: `python experiments/demo_runs.py glass_instances /tmp/demo_full`. It made
experiments/results/demo_runs_<run>_seed0.json (the demo's data of `glass-demo --out /tmp/demo_full`, seed 0)."""
import json, sys
from pathlib import Path
import torch
from glass.io import asset_path
from glass.toy.world import render_split
from glass.toy.demo import demo_config, SIZES, RUNS, run_metrics, train_and_evaluate

def main(name: str, demo_out: str, seed: int = 0):
    torch.set_num_threads(1)
    size = SIZES["full"]
    val, rep = render_split("val", size.n_val, seed), render_split("repeated", size.n_repeated, seed)
    cfg = demo_config(asset_path("toy-sd"), size, seed, **RUNS[name]["set"])
    m, _, secs = train_and_evaluate(cfg, Path(demo_out)/"gen"/RUNS[name]["data"], Path(demo_out)/"runs_only"/name, val, False, "cpu", rep)
    r = {**run_metrics(m), "seconds": secs}
    print(name, json.dumps(r), flush=True)
    Path(f"experiments/results/demo_runs_{name}_seed{seed}.json").write_text(json.dumps(r, indent=1))

if __name__ == "__main__": main(*sys.argv[1:3])
