"""Train one of the demo's runs (`glass.toy.demo.RUNS`) on a finished demo's generated GLASS data, with optional
setting overrides, and score it on `val` and on the `repeated` split:

  python experiments/demo_runs.py glass_instances /tmp/demo_full
  python experiments/demo_runs.py glass /tmp/demo --set slots.spatial_prior=1 slots.iters=5 train.seed=1 --tag prior_s1
  python experiments/demo_runs.py glass /tmp/demo_l3 --model /tmp/sd-l3 --tag l3   # a demo run with glass-demo --model

It writes experiments/results/demo_runs_<run>_<tag>.json (tag default `seed0`). Like `glass-demo`, it computes on the
portable CPU paths unless `--kernels native` (so its numbers compare with the demo's); the results files written
before that option existed were computed on their machine's own paths."""
import argparse, json
from pathlib import Path
import torch
from glass.io import asset_path
from glass.config import parse_overrides
from glass.toy.world import render_split
from glass.core import hold_kernels, KERNELS
from glass.toy.demo import demo_config, SIZES, RUNS, run_metrics, train_and_evaluate

def run_parser(description: str) -> argparse.ArgumentParser:
    "The arguments of a retrained demo run: which run, the demo folder, overrides, tag, probe, model, kernels."
    p = argparse.ArgumentParser(description=description)
    p.add_argument("run", choices=list(RUNS)); p.add_argument("demo_out", help="a finished `glass-demo --out` folder")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="toy-preset overrides on top of the run's own")
    p.add_argument("--tag", default="seed0", help="suffix of the results file and of the run folder")
    p.add_argument("--probe-steps", type=int, default=0, help="steps of the class probe (0: none)")
    p.add_argument("--model", help="the toy model the demo ran on (default: the shipped one)")
    p.add_argument("--kernels", choices=KERNELS, default="portable", help="CPU code paths, as glass-demo's --kernels")
    return p

def retrain(a, study: str = "demo_runs", extra: dict | None = None) -> dict:
    "Train run `a.run` (parsed by `run_parser`) alone on the demo's data, score it, write results/<study>_<run>_<tag>.json."
    torch.set_num_threads(1)
    size = SIZES["full"]
    val, rep = render_split("val", size.n_val, 0), render_split("repeated", size.n_repeated, 0)
    cfg = demo_config(a.model or asset_path("toy-sd"), size, 0, **{**RUNS[a.run]["set"], **parse_overrides(a.set)})
    out = Path(a.demo_out)/"runs_only"/f"{study}_{a.run}_{a.tag}"
    m, _, secs = train_and_evaluate(cfg, Path(a.demo_out)/"gen"/RUNS[a.run]["data"], out, val, False, "cpu", rep,
                                    probe_steps=a.probe_steps)
    r = {**run_metrics(m), **(extra or {}), "overrides": a.set, "seconds": secs}
    print(a.run, a.tag, json.dumps({k: r[k] for k in ("dinosaur", "repeated")}), flush=True)
    Path(f"experiments/results/{study}_{a.run}_{a.tag}.json").write_text(json.dumps(r, indent=1))
    return r

def main(argv=None):
    a = run_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    hold_kernels(a.kernels, "demo_runs")
    retrain(a)

if __name__ == "__main__": main()
