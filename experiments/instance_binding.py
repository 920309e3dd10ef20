"""Can the toy slot model learn to give two objects of one class two slots? Two measures, exact instance masks only
(no pseudo masks, so the answer is about the slot model, not the masks):

- `probe`: guidance alone (Eq. 4's BCE on Hungarian-matched slots, no decoder) on the real `train_repeated` scenes,
  mixed with `--n-train` real `train` scenes; every `--every` steps, the share of the `train_repeated` scenes (seen in
  training) and of the held-out `repeated` scenes whose first two objects (one class) have different argmax slots.
  With `--generated DEMO_OUT` the training items are instead a finished demo's generated GLASS images with their
  instance *pseudo* masks (`--split-only`: only the items whose instance map splits a class), so that the probe tells
  the slot model's limits from those of the masks and images it is given.
- `train`: the demo's whole slot training (`glass.train.train`, diffusion MSE + guidance, the demo's budget unless
  `--steps`) on the real `train` + `train_repeated` scenes guided by their exact instance (or class) masks, scored like
  a demo run on `val` and `repeated`.
- `runs`: the separated share (below) of already trained run folders (`--runs`, e.g. a demo's `runs/glass`) on the
  held-out `repeated` scenes: does a run give two objects of one class two slots?

Writes experiments/results/instance_binding_<mode>_<tag>.json. Examples:
  python experiments/instance_binding.py probe --n-train 0          # only scenes where a class repeats
  python experiments/instance_binding.py probe --n-train 192        # the demo's mix
  python experiments/instance_binding.py probe --set slots.spatial_prior=1 --tag prior1   # with the location prior
  python experiments/instance_binding.py probe --generated /tmp/demo --split-only     # generated items, pseudo masks
  python experiments/instance_binding.py probe --generated /tmp/demo --split-only --oracle   # the same, oracle masks
  python experiments/instance_binding.py probe --generated /tmp/demo --split-first 100      # those items first, then all
  python experiments/instance_binding.py figure --generated /tmp/demo   # the instance chapter's picture
  python experiments/instance_binding.py train --masks instance --steps 480
  python experiments/instance_binding.py train --masks instance --position 2 --kernels portable --tag train_instance_120_pos2_sigma3
  python experiments/instance_binding.py runs --runs /tmp/demo/runs/glass /tmp/demo/runs/glass_instances --tag demo
"""
import argparse, json, time
from pathlib import Path
import numpy as np
import torch
from glass.core import KERNELS, hold_kernels

RESULTS = Path(__file__).parent/"results"

def training_scenes(n_train: int, n_repeated: int, seed: int = 0):
    "The real `train` scenes followed by the `train_repeated` ones, as the demo concatenates them."
    from glass.toy.world import render_split, concat_splits
    rep = render_split("train_repeated", n_repeated, seed)
    return concat_splits("train", render_split("train", n_train, seed), rep) if n_train else rep

def generated_items(demo_out, split_only: bool, oracle: bool = False) -> tuple:
    """A demo's generated GLASS images (n,H,W,3) uint8, instance pseudo masks (n,H,W) (`oracle`: the components of the
    images' colour oracle instead, parts under 2.5% joined to their neighbour) and class maps; `split_only`: items where
    a class splits."""
    from safetensors.torch import load_file
    from glass.toy.world import colour_segmentation
    from glass.instances import component_instances
    shards = [load_file(str(f)) for f in sorted((Path(demo_out)/"gen"/"glass").glob("shard-*.safetensors"))]
    images = torch.cat([s["images"] for s in shards]).permute(0, 2, 3, 1).numpy()
    inst, cls = torch.cat([s["instances"] for s in shards]), torch.cat([s["masks"] for s in shards])
    if oracle:
        cls = torch.from_numpy(colour_segmentation(images))
        inst = torch.from_numpy(np.stack([component_instances(c, 0.025) for c in cls.numpy()]))
    keep = np.flatnonzero(splits_a_class(inst.numpy(), cls.numpy()) | (not split_only))
    return images[keep], inst[keep].numpy(), cls[keep].numpy()

def splits_a_class(instance: np.ndarray, classes: np.ndarray) -> np.ndarray:
    "Whether each item's instance map (n,H,W) holds more segments than its class map (n,H,W): (n,) bool."
    count = lambda m: len(set(np.unique(m).tolist()) - {0, 255})
    return np.array([count(i) > count(c) for i, c in zip(instance, classes)])

def equal_shades(images: np.ndarray, instance: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Scenes (n,H,W,3) uint8 with every object shifted to the mean colour of the first object of its class (instance
    maps (n,H,W), class maps (n,H,W)): same-class objects lose the shade that tells them apart in the world."""
    out = images.astype(np.float32).copy()
    for x, I, C in zip(out, instance, classes):
        first = {}
        for k in [k for k in np.unique(I) if k != 0]:
            m = I == k; c = np.bincount(C[m]).argmax()
            if c in first: x[m] += first[c] - x[m].mean(0)
            else: first[c] = x[m].mean(0)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)

@torch.no_grad()
def vae_roundtrip(images: np.ndarray) -> np.ndarray:
    "Scenes (n,H,W,3) uint8 encoded and decoded by the shipped toy VAE (posterior mean): what its latents can show."
    from glass.io import asset_path
    from glass.toy.model import load_toy_pipeline
    vae = load_toy_pipeline(asset_path("toy-sd")).vae
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    y = torch.cat([vae.decode(vae.encode(b).latent_dist.mean).sample for b in x.split(256)])
    return ((y.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()

def touching(inst: np.ndarray) -> np.ndarray:
    "Whether instances 1 and 2 of each scene (n,H,W) touch (a pixel of one 4-adjacent to the other): (n,) bool."
    a, b = inst == 1, inst == 2
    near = np.zeros_like(b)
    near[:, 1:] |= b[:, :-1]; near[:, :-1] |= b[:, 1:]; near[:, :, 1:] |= b[:, :, :-1]; near[:, :, :-1] |= b[:, :, 1:]
    return (a & near).any((1, 2))

def separated(pred: np.ndarray, inst: np.ndarray, cls: np.ndarray) -> float:
    "Share of scenes with a class in two or more instances whose first two instances of that class have different majority slots."
    hits = []
    for p, I, C in zip(pred, inst, cls):
        by = {}
        for k in [k for k in np.unique(I) if k not in (0, 255)]:
            by.setdefault(np.bincount(C[I == k]).argmax(), []).append(k)
        pair = next((ks[:2] for ks in by.values() if len(ks) >= 2), None)
        if pair: hits.append(np.bincount(p[I == pair[0]]).argmax() != np.bincount(p[I == pair[1]]).argmax())
    return float(np.mean(hits))

def held_out_separation(model, held_out) -> dict:
    "The separated share on the held-out scenes, on all of them and on those whose two same-class objects touch or not."
    from glass.toy.demo import slot_argmax
    pred, touch = slot_argmax(model, held_out.images), touching(held_out.instance)
    on = lambda sel: separated(pred[sel], held_out.instance[sel], held_out.classes[sel])
    return {"held_out": on(slice(None)), "held_out_touching": on(touch), "held_out_apart": on(~touch)}

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
    held_out = render_split("repeated", 200, a.seed)
    if a.generated:
        images, instance, classes = generated_items(a.generated, a.split_only, a.oracle)
        a.n_train = 0                                             # "seen": every training item
    else:
        scenes = training_scenes(a.n_train, a.n_repeated, a.seed)
        images, instance, classes = scenes.images, scenes.instance, scenes.classes
        if a.equal_shades: images = equal_shades(images, instance, classes)
        if a.vae_roundtrip: images = vae_roundtrip(images)
    x = model.preprocess(torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2))
    labels = torch.from_numpy(instance.astype(np.int64))
    opt, g = torch.optim.Adam(model.trainable_parameters(), a.lr), torch.Generator().manual_seed(a.seed)
    all_items = torch.arange(len(images))
    first = torch.from_numpy(np.flatnonzero(splits_a_class(instance, classes))) if a.split_first else all_items
    rows = []
    for step in range(a.steps + 1):
        if step % a.every == 0:
            seen = separated(slot_argmax(model, images[a.n_train:]), instance[a.n_train:], classes[a.n_train:])
            rows.append({"step": step, "items": len(images), "seen": seen,
                         **held_out_separation(model, held_out)})
            print(rows[-1], flush=True)
        if step == a.steps: break
        pool = first if step < a.split_first else all_items
        idx = pool[torch.randint(0, len(pool), (a.batch_size,), generator=g)]
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
    cfg = demo_config(model, SIZES["full"], a.seed, **{"guidance.source": "gt", "train.steps": steps, "train.checkpoint_every": steps,
                                                   **dict(a.set)})
    rep = render_split("repeated", 200, a.seed)
    m, trained, t = train_and_evaluate(cfg, out/"data", out/f"run{steps}", render_split("val", 500, a.seed), progress=False,
                                       repeated=rep, probe_steps=0)
    return {"metrics": run_metrics(m), "separated_repeated": separated(slot_argmax(trained, rep.images), rep.instance, rep.classes),
            "seconds": t}

def figure(a) -> dict:
    "The instance chapter's picture: generated items whose class splits over their oracle instances, real `train_repeated` scenes over theirs."
    import matplotlib; matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from glass.toy.world import render_split
    images, inst, _ = generated_items(a.generated, True, True)
    real = render_split("train_repeated", 10, a.seed)
    rows = [images[:10], np.where(inst[:10] == 255, 0, inst[:10]), real.images[:10], real.instance[:10]]
    fig, ax = plt.subplots(4, 10, figsize=(10, 4.3))
    for i, row in enumerate(rows):
        for j, x in enumerate(row):
            ax[i, j].imshow(x, **({} if x.ndim == 3 else dict(cmap="tab10", vmin=0, vmax=9, interpolation="nearest")))
            ax[i, j].set_xticks([]); ax[i, j].set_yticks([])
        ax[i, 0].set_ylabel(["generated", "oracle\ninstances", "real\ntrain_repeated", "exact\ninstances"][i], fontsize=8)
    out = Path(__file__).parents[1]/"nbs"/"images"/"instances_generated_vs_real.png"
    plt.tight_layout(pad=0.3); fig.savefig(out, dpi=72); plt.close(fig)
    return {"figure": str(out)}

def trained_runs(a) -> dict:
    "The separated share of each trained run folder in `a.runs` on the held-out `repeated` scenes."
    from glass.checkpoint import find_checkpoint, load_checkpoint
    from glass.toy.world import render_split
    held_out = render_split("repeated", 200, a.seed)
    return {run: held_out_separation(load_checkpoint(find_checkpoint(run))[1], held_out) for run in a.runs}

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["probe", "train", "figure", "runs"])
    p.add_argument("--n-train", type=int, default=192, help="real `train` scenes in the mix (default 192, the demo's)")
    p.add_argument("--n-repeated", type=int, default=64, help="real `train_repeated` scenes (default 64, the demo's)")
    p.add_argument("--steps", type=int, help="probe: guidance steps (default 400); train: slot steps (default: the demo's)")
    p.add_argument("--every", type=int, default=100, help="probe: steps between measures")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--masks", choices=["instance", "class"], default="instance", help="train: guidance masks")
    p.add_argument("--set", nargs="*", default=[], type=lambda s: tuple(s.split("=", 1)), metavar="FIELD=VALUE",
                   help="probe and train: toy-preset overrides, e.g. slots.iters=5 train.lr=3e-3")
    p.add_argument("--generated", help="probe: a finished `glass-demo --out` folder whose generated items to train on")
    p.add_argument("--split-only", action="store_true", help="probe --generated: only items whose instance map splits a class")
    p.add_argument("--oracle", action="store_true", help="probe --generated: the colour oracle's components instead of the pseudo masks")
    p.add_argument("--split-first", type=int, default=0, help="probe: the first K steps draw only items whose instance map splits a class")
    p.add_argument("--equal-shades", action="store_true", help="probe: real training scenes with same-class objects in one colour")
    p.add_argument("--vae-roundtrip", action="store_true", help="probe: real training scenes through the toy VAE and back")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", nargs="*", default=[], help="runs: trained run folders to score")
    p.add_argument("--out", default="/tmp/instance_binding", help="train: working folder")
    p.add_argument("--tag", default="", help="suffix of the results file")
    p.add_argument("--position", type=float, default=0.0, metavar="SCALE",
                   help="add position_features.py's code (sigma 3) times SCALE to the colour encoder's features (0: none)")
    p.add_argument("--kernels", choices=KERNELS, default="native", help="CPU code paths, as glass-demo's --kernels")
    a = p.parse_args()
    hold_kernels(a.kernels, "instance_binding")
    if a.position:
        from position_features import with_position
        with_position(a.position, 3.0)
    torch.set_num_threads(1)
    if a.mode == "probe": a.steps = a.steps or 400
    t0 = time.perf_counter()
    res = {"probe": probe, "train": train_run, "figure": figure, "runs": trained_runs}[a.mode](a)
    res.update(args={k: v for k, v in vars(a).items()}, seconds_total=round(time.perf_counter() - t0, 1))
    tag = a.tag or f"{a.n_train}_{a.n_repeated}" + (f"_{a.masks}_{a.steps}" if a.mode == "train" else "")
    RESULTS.mkdir(exist_ok=True)
    if a.mode != "figure": (RESULTS/f"instance_binding_{a.mode}_{tag}.json").write_text(json.dumps(res, indent=1, default=str))
    print(json.dumps({k: v for k, v in res.items() if k != "rows"}, default=str)[:800])

if __name__ == "__main__": main()
