"""Can the toy slot model learn to give two objects of one class two slots? Two measures, exact instance masks only
(no pseudo masks, so the answer is about the slot model, not the masks):

- `probe`: guidance alone (Eq. 4's BCE on Hungarian-matched slots, no decoder) on the real `train_repeated` scenes,
  mixed with `--n-train` real `train` scenes; every `--every` steps, the share of the `train_repeated` scenes (seen in
  training) and of the held-out `repeated` scenes whose first two objects (one class) have different argmax slots.
- `train`: the demo's whole slot training (`glass.train.train`, diffusion MSE + guidance, the demo's budget unless
  `--steps`) on the real `train` + `train_repeated` scenes guided by their exact instance (or class) masks, scored like
  a demo run on `val` and `repeated`.

Writes experiments/results/instance_binding_<mode>_<tag>.json. Examples:
  python experiments/instance_binding.py probe --n-train 0          # only scenes where a class repeats
  python experiments/instance_binding.py probe --n-train 192        # the demo's mix
  python experiments/instance_binding.py probe --set slots.spatial_prior=1 --tag prior1   # with the location prior
  python experiments/instance_binding.py train --masks instance --steps 480
"""
import argparse, json, time
from pathlib import Path
import numpy as np
import torch

RESULTS = Path(__file__).parent/"results"

def training_scenes(n_train: int, n_repeated: int, seed: int = 0):
    "The real `train` scenes followed by the `train_repeated` ones, as the demo concatenates them."
    from glass.toy.world import render_split, concat_splits
    rep = render_split("train_repeated", n_repeated, seed)
    return concat_splits("train", render_split("train", n_train, seed), rep) if n_train else rep

def separated(pred: np.ndarray, inst: np.ndarray) -> float:
    "Share of scenes (n,H,W) whose instances 1 and 2 (one class in the repeated splits) have different majority slots."
    return float(np.mean([np.bincount(p[g == 1]).argmax() != np.bincount(p[g == 2]).argmax() for p, g in zip(pred, inst)]))

def probe(a) -> dict:
    "Guidance-only training on exact instance masks; the separation share over the steps."
    from glass.io import asset_path
    from glass.model import GLASS
    from glass.slots import resize_masks
    from glass.guidance import guidance_loss
    from glass.toy.world import render_split
    from glass.toy.demo import demo_config, SIZES, slot_argmax
    torch.manual_seed(a.seed)
    model = GLASS(demo_config(Path(asset_path("toy-sd")), SIZES["full"], a.seed, **dict(a.set)))
    scenes, held_out = training_scenes(a.n_train, a.n_repeated, a.seed), render_split("repeated", 200, a.seed)
    x = model.preprocess(torch.from_numpy(scenes.images).permute(0, 3, 1, 2))
    labels = torch.from_numpy(scenes.instance.astype(np.int64))
    opt, g = torch.optim.Adam(model.trainable_parameters(), a.lr), torch.Generator().manual_seed(a.seed)
    rows = []
    for step in range(a.steps + 1):
        if step % a.every == 0:
            seen = scenes.instance[a.n_train:]
            rows.append({"step": step, "seen": separated(slot_argmax(model, scenes.images[a.n_train:]), seen),
                         "held_out": separated(slot_argmax(model, held_out.images), held_out.instance)})
            print(rows[-1], flush=True)
        if step == a.steps: break
        idx = torch.randint(0, len(scenes), (a.batch_size,), generator=g)
        loss, _ = guidance_loss(resize_masks(model.encode_slots(pixel_values=x[idx])["masks"], (32, 32)), labels[idx])
        loss.backward(); opt.step(); opt.zero_grad()
    return {"rows": rows}

def train_run(a) -> dict:
    "The demo's slot training on real scenes guided by their exact instance or class masks, scored like a demo run."
    from glass.io import asset_path
    from glass.toy.model import load_toy_pipeline
    from glass.toy.world import render_split
    from glass.toy.demo import demo_config, SIZES, train_and_evaluate, run_metrics, write_real_shards, slot_argmax
    out, model = Path(a.out)/f"{a.masks}_{a.n_train}_{a.n_repeated}", Path(asset_path("toy-sd"))
    scenes = training_scenes(a.n_train, a.n_repeated, a.seed)
    if not (out/"data"/"manifest.json").exists():
        write_real_shards(scenes, load_toy_pipeline(model).vae, out/"data", progress=False, masks=a.masks)
    steps = a.steps or SIZES["full"].train_steps
    cfg = demo_config(model, SIZES["full"], a.seed, **{"guidance.source": "gt", "train.steps": steps, "train.checkpoint_every": steps})
    rep = render_split("repeated", 200, a.seed)
    m, trained, t = train_and_evaluate(cfg, out/"data", out/f"run{steps}", render_split("val", 500, a.seed), progress=False,
                                       repeated=rep, probe_steps=0)
    return {"metrics": run_metrics(m), "separated_repeated": separated(slot_argmax(trained, rep.images), rep.instance),
            "seconds": t}

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["probe", "train"])
    p.add_argument("--n-train", type=int, default=192, help="real `train` scenes in the mix (default 192, the demo's)")
    p.add_argument("--n-repeated", type=int, default=64, help="real `train_repeated` scenes (default 64, the demo's)")
    p.add_argument("--steps", type=int, help="probe: guidance steps (default 400); train: slot steps (default: the demo's)")
    p.add_argument("--every", type=int, default=100, help="probe: steps between measures")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--masks", choices=["instance", "class"], default="instance", help="train: guidance masks")
    p.add_argument("--set", nargs="*", default=[], type=lambda s: tuple(s.split("=", 1)), metavar="FIELD=VALUE",
                   help="probe: toy-preset overrides, e.g. slots.iters=5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="/tmp/instance_binding", help="train: working folder")
    p.add_argument("--tag", default="", help="suffix of the results file")
    a = p.parse_args()
    torch.set_num_threads(1)
    if a.mode == "probe": a.steps = a.steps or 400
    t0 = time.perf_counter()
    res = probe(a) if a.mode == "probe" else train_run(a)
    res.update(args={k: v for k, v in vars(a).items()}, seconds_total=round(time.perf_counter() - t0, 1))
    tag = a.tag or f"{a.n_train}_{a.n_repeated}" + (f"_{a.masks}_{a.steps}" if a.mode == "train" else "")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS/f"instance_binding_{a.mode}_{tag}.json").write_text(json.dumps(res, indent=1, default=str))
    print(json.dumps({k: v for k, v in res.items() if k != "rows"}, default=str)[:800])

if __name__ == "__main__": main()
