"""GLASS guided by class vs instance pseudo masks at the demo's budget and seed, on the same generated images (one
generation stores both maps), evaluated on `val` and on the `repeated` split in both protocols: the demo's runs
`glass` and `glass_instances` alone, with the instance settings as arguments. Writes
experiments/results/train_compare_<method>_<min area>_seed<seed>.json.

The results already in experiments/results were measured by the first version of this script (before the toy
subpackage; the same seeds, images and class masks): `train_compare_auto_seed0.json` with generate.instances=auto and
min_instance_area 0.002; `train_compare_auto_comp025_seed0.json` with instance maps recomputed from the stored class
masks by `components` at min_instance_area 0.025 (the 'glass_instances' run there)."""
import argparse, json
from pathlib import Path
import torch
from glass.config import apply_overrides
from glass.generate import generate
from glass.io import asset_path
from glass.toy.world import render_split, write_records
from glass.toy.model import load_toy_pipeline
from glass.toy.demo import demo_config, SIZES, run_metrics, train_and_evaluate

def main(argv=None):
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("--out", default="runs/train_compare"); a.add_argument("--seed", type=int, default=0)
    a.add_argument("--method", default="auto", choices=["components", "attention", "auto"])
    a.add_argument("--min-area", type=float, default=0.025); a.add_argument("--n-repeated", type=int, default=200)
    args = a.parse_args(argv)
    torch.set_num_threads(1)
    out, size, seed = Path(args.out), SIZES["full"], args.seed
    cfg_for = lambda **change: demo_config(asset_path("toy-sd"), size, seed, **change)
    inst = {"generate.instances": args.method, "generate.min_instance_area": args.min_area}
    train_split = render_split("train", size.n_train, seed)
    val, rep = render_split("val", size.n_val, seed), render_split("repeated", args.n_repeated, seed)
    write_records(train_split, out/"train_prompts.jsonl")
    generate(apply_overrides(cfg_for(), inst), out/"train_prompts.jsonl", out/"gen", pipe=load_toy_pipeline(asset_path("toy-sd")),
             progress=False, cpu=True)
    res = {}
    for name, change in (("glass", {}), ("glass_instances", inst)):
        m, _, secs = train_and_evaluate(cfg_for(**change), out/"gen", out/"runs"/name, val, False, "cpu", rep)
        res[name] = {**run_metrics(m), "seconds": {k: round(v, 1) for k, v in secs.items()}}
        print(name, json.dumps(res[name]), flush=True)
    Path("experiments/results").mkdir(parents=True, exist_ok=True)
    Path(f"experiments/results/train_compare_{args.method}_{args.min_area}_seed{seed}.json").write_text(json.dumps(res, indent=1))

if __name__ == "__main__": main()
