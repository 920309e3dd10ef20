"""mBO of pseudo instance segments of real toy scenes against their exact instance masks, read through the demo's
inversion-free path (`glass.toy.demo.tap_real_scenes` + `glass.refine.label_maps_from_taps`), for each method of
`glass.instances`, with the class masks' own mBO as the baseline. Writes experiments/results/pseudo_instances_<min area>.json (argument: the minimum area, default 0.025)."""
import json, time
from pathlib import Path
import numpy as np
import torch
from scipy import ndimage
from glass.config import apply_overrides
from glass.io import asset_path
from glass.refine import label_maps_from_taps
from glass.instances import instance_maps
from glass.toy.world import render_split
from glass.toy.model import load_toy_pipeline
from glass.toy.demo import demo_config, SIZES, scene_classes, tap_real_scenes

def mbo(pred_maps, gt_maps) -> float:
    "Mean over ground-truth objects of the best IoU with a predicted segment (0 and 255 are not segments)."
    out = []
    for p, g in zip(pred_maps, gt_maps):
        segs = [p == v for v in np.unique(p) if v not in (0, 255)]
        out += [max([((g == v) & s).sum() / ((g == v) | s).sum() for s in segs], default=0.0) for v in np.unique(g) if v]
    return float(np.mean(out))

def touching(inst) -> bool:
    "Do two objects of the scene touch (4-neighbours)?"
    ids = [v for v in np.unique(inst) if v]
    return any((ndimage.binary_dilation(inst == a) & (inst == b)).any() for a in ids for b in ids if a < b)

@torch.no_grad()
def pseudo_maps(pipe, split, cfg, methods, batch_size=50, seed=0) -> dict:
    "Class pseudo masks and each method's instance maps (lists of (H,W) arrays) of a split's real scenes."
    gen, size = torch.Generator().manual_seed(seed), split.images.shape[1]
    out = {m: [] for m in ("class_masks",) + methods}
    for i0 in range(0, len(split), batch_size):
        recs = split.records[i0:i0 + batch_size]
        classes = scene_classes(recs, cfg)
        taps = tap_real_scenes(pipe, split.images[i0:i0 + len(recs)], recs, classes, cfg.generate, SIZES["full"].timesteps, gen)
        labels = label_maps_from_taps(taps, pipe.tokenizer, classes, size, cfg.generate)
        sa = taps.self_attention(cfg.generate.self_res)
        out["class_masks"] += list(labels.numpy())
        for m in methods:
            g = apply_overrides(cfg, {"generate.instances": m}).generate
            out[m] += list(instance_maps(labels, sa, [r["caption"] for r in recs], classes, g, cfg.slots.num_slots).numpy())
    return out

def main(min_area: float = 0.025, seed: int = 0):
    torch.set_num_threads(1)
    cfg = demo_config(asset_path("toy-sd"), SIZES["full"], seed, **{"generate.instances": "auto", "generate.min_instance_area": min_area})
    pipe, res = load_toy_pipeline(asset_path("toy-sd")), {"min_instance_area": min_area}
    for name, split in (("repeated", render_split("repeated", 200, seed)), ("val", render_split("val", 500, seed))):
        t = time.perf_counter()
        maps = pseudo_maps(pipe, split, cfg, ("components", "attention", "auto"), seed=seed)
        touch = np.array([touching(x) for x in split.instance])
        r = {"n_scenes": len(split), "n_touching": int(touch.sum()), "seconds": round(time.perf_counter() - t, 1)}
        for m, pred in maps.items():
            r[m] = mbo(pred, split.instance)
            if 0 < touch.sum() < len(split):
                r[f"{m}_touching"] = mbo([pred[i] for i in np.flatnonzero(touch)], split.instance[touch])
                r[f"{m}_apart"] = mbo([pred[i] for i in np.flatnonzero(~touch)], split.instance[~touch])
        res[name] = r; print(name, json.dumps(r), flush=True)
    Path("experiments/results").mkdir(parents=True, exist_ok=True)
    Path(f"experiments/results/pseudo_instances_{min_area}.json").write_text(json.dumps(res, indent=1))

if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("min_area", type=float, nargs="?", default=0.025, help="minimum instance area, a fraction of the image")
    main(ap.parse_args().min_area)
