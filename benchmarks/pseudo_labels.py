#!/usr/bin/env python
"""Pseudo-mask quality against cost in the toy world, where the truth is known.

    python benchmarks/pseudo_labels.py                       # the sweep (~10 CPU minutes with 1 thread)
    python benchmarks/pseudo_labels.py --train               # + a short slot-training run per chosen point
    python benchmarks/pseudo_labels.py --plot-only           # redraw the plot from the JSON

Every point generates the same items (the captions of the toy world's first `--items` real training scenes, prompts
and seeds exactly as `glass.generate.make_item` makes them) with the shipped toy model (`glass/assets/toy-sd`, the
`toy` preset: 32 px, CFG 3) through `glass.generate.generate_images`, with sampler `S` (`generate.sampler`)
and `N` steps. The tap choices of one (S, N) share that one generation: `generate_images` installs its own taps (all
steps) and the other choices are extra `glass.hooks.attention_taps` around it, reading only their steps
(`glass.samplers.tap_step_set`); the taps never change the image, so each choice sees the same images. Pseudo masks
come from `glass.refine.label_maps_from_taps` as in `glass-generate`, images are rounded to uint8 as the shards store them
(`glass.generate.to_train_resolution`), and both are scored with `glass.toy.demo`'s functions: the pseudo mask (world class ids,
`class_id_map`) against the colour oracle of the generated image (`glass.toy.world.colour_segmentation`), `mask_iou_scores`
(object mIoU per image and object class present, class mIoU over the dataset, background included).

Cost: `unet_evals` = latents through the UNet per item (`glass.samplers.UnetEvaluations`: the CFG batch holds two
latents per item and step, so 2 x steps); `seconds_per_item` = this process's CPU time per item for the generation
(UNet, VAE decode, every tap choice of the point) plus the pseudo masks, with 1 torch thread: on a shared machine CPU
time is steadier than wall time (wall time is kept as `wall_seconds_per_item`).

Quality against the reference (the paper's recipe: the model's own sampler, 100 steps, all steps read): `d_object_miou`
and a 90% paired bootstrap interval over items (same resampled items for both points).

Not a test: nothing here asserts. Writes `results/pseudo-labels-toy-cpu.json` (rewritten after each point; `--resume`
skips points already there) and `results/pseudo-labels-toy-cpu.png`.
"""
from __future__ import annotations
import argparse, contextlib, json, os, platform, time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent
GRID = {"default": (100, 50, 25, 15, 10, 5), "dpm-solver++": (50, 25, 15, 10, 5), "unipc": (50, 25, 15, 10, 5)}
REFERENCE = ("default", 100, "all")


def tap_choices(steps: int) -> list:
    "All steps (the paper), every second step, and the last quarter of the steps."
    return list(dict.fromkeys(["all", "every:2", f"last:{max(1, steps // 4)}"]))


def load_world(n: int, seed: int):
    "The toy pipeline, the `toy` preset (demo settings) and the items of the first `n` real training scenes."
    from glass.io import asset_path
    from glass.toy.demo import demo_config, SIZES
    from glass.toy.model import load_toy_pipeline
    from glass.toy.world import render_split
    from glass.generate import make_item
    pipe = load_toy_pipeline(); pipe.set_progress_bar_config(disable=True)
    cfg = demo_config(asset_path("toy-sd"), SIZES["full"], seed)
    split = render_split("train", n, seed)
    return pipe, cfg, [make_item(r, i, cfg) for i, r in enumerate(split.records)]


def generate_point(pipe, items: list, g, sampler: str, specs: list, batch: int) -> tuple:
    "Images (uint8), pseudo masks per tap choice, UNet evaluations per item, CPU and wall seconds per item."
    from glass.generate import generate_images, to_train_resolution
    from glass.hooks import attention_taps, encode_texts
    from glass.prompts import class_prompt
    from glass.refine import label_maps_from_taps, reads_self_attention
    from glass.samplers import tap_step_set, UnetEvaluations
    latent, imgs, masks = g.resolution // pipe.vae_scale_factor, [], {s: [] for s in specs}
    c0, t0 = time.process_time(), time.perf_counter()
    g = replace(g, sampler=sampler)
    with UnetEvaluations(pipe.unet) as ev:
        for b in range(0, len(items), batch):
            part = items[b:b + batch]
            with contextlib.ExitStack() as stack:
                extra = {s: stack.enter_context(attention_taps(pipe.unet, latent, g.cross_res, g.self_res if reads_self_attention(g) else None,
                                                               steps=tap_step_set(s, g.steps))) for s in specs if s != "all"}
                emb = encode_texts(pipe, [class_prompt(it["classes"]) for it in part])
                for t in extra.values(): t.reset(emb)
                images, taps = generate_images(pipe, part, replace(g, tap_steps="all"), taps=True)   # sampler g.sampler
            for s in specs:
                m = label_maps_from_taps(taps if s == "all" else extra[s], pipe.tokenizer, [it["classes"] for it in part], g.resolution, g)
                im, m = to_train_resolution(images, m, g.train_resolution)
                masks[s].append(m)
            imgs.append(im)
    n = len(items)
    return torch.cat(imgs), {s: torch.cat(v) for s, v in masks.items()}, ev.per_item(n), \
        (time.process_time() - c0) / n, (time.perf_counter() - t0) / n


def scores(images, masks, items) -> tuple:
    "World class-id pseudo masks and colour-oracle maps of a point, and `mask_iou_scores` of the two."
    from glass.toy.demo import class_id_map, mask_iou_scores
    from glass.toy.world import colour_segmentation
    pred = np.stack([class_id_map(m, it["classes"]) for m, it in zip(masks, items)])
    ref = colour_segmentation(images)
    return pred, ref, mask_iou_scores(pred, ref)


def paired_interval(pred, ref, pred0, ref0, n_boot: int = 200, seed: int = 0) -> tuple:
    "90% bootstrap interval over items of object mIoU(point) - object mIoU(reference), same resamples for both."
    from glass.toy.demo import mask_iou_scores
    rng, n, d = np.random.default_rng(seed), len(pred), []
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        d.append(mask_iou_scores(pred[i], ref[i])["object_miou"] - mask_iou_scores(pred0[i], ref0[i])["object_miou"])
    return float(np.percentile(d, 5)), float(np.percentile(d, 95))


def pareto(rows: list) -> list:
    "Rows no other row beats on both cost (fewer UNet evaluations) and quality (higher object mIoU)."
    return [r for r in rows if not any(o["unet_evals"] <= r["unet_evals"] and o["object_miou"] > r["object_miou"]
                                       or o["unet_evals"] < r["unet_evals"] and o["object_miou"] >= r["object_miou"]
                                       for o in rows)]


def choose_fast(rows: list, ref: dict, tolerance: float = 0.02, min_saving: float = 4.0) -> dict | None:
    "The cheapest row with at least `min_saving`x fewer UNet evaluations than the reference and object mIoU within `tolerance`."
    ok = [r for r in rows if r["unet_evals"] * min_saving <= ref["unet_evals"] and r["object_miou"] >= ref["object_miou"] - tolerance]
    return min(ok, key=lambda r: (r["unet_evals"], -r["object_miou"], r["seconds_per_item"])) if ok else None


def plot(result: dict, path: Path):
    "Object and class mIoU against UNet evaluations per item: a colour per sampler, a marker and line style per tap choice."
    import matplotlib; matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from glass.viz import save_figure
    rows, ref = result["rows"], result["reference"]
    samplers = list(dict.fromkeys(r["sampler"] for r in rows))
    taps = {"all": ("o", "-", "all steps"), "every:2": ("s", "--", "every 2nd step"), "last": ("^", ":", "last quarter")}
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, key in enumerate(("object_miou", "class_miou")):
        for i, smp in enumerate(samplers):
            for t, (mk, ls, label) in taps.items():
                pts = sorted((r["unet_evals"], r[key]) for r in rows if r["sampler"] == smp
                             and (r["tap_steps"] == t or t == "last" and r["tap_steps"].startswith("last")))
                if pts: ax[k].plot(*zip(*pts), marker=mk, ls=ls, color=f"C{i}", ms=4, lw=1, label=f"{smp}, {label}")
        ax[k].axhline(ref[key], color="k", lw=0.6)
        if key == "object_miou": ax[k].axhspan(ref[key] - 0.02, ref[key], color="k", alpha=0.08)
        ax[k].set_xscale("log"); ax[k].set_xlabel("UNet evaluations per item (CFG: 2 x steps)"); ax[k].set_ylabel(key.replace("_", " "))
    if result.get("fast"): ax[0].plot(result["fast"]["unet_evals"], result["fast"]["object_miou"], "r*", ms=12, label="fast")
    ax[0].legend(fontsize=6, ncol=2)
    fig.suptitle(f"toy world: pseudo masks of {result['items']} generated images vs the colour oracle "
                 f"(black line: default sampler, 100 steps, all steps read; grey band: within 0.02)", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def markdown_table(result: dict) -> str:
    "The sweep as a Markdown table, cheapest first; the reference and the fast point in bold."
    ref, fast = result["reference"], result.get("fast") or {}
    key = lambda r: (r["sampler"], r["steps"], r["tap_steps"])
    L = ["| sampler | steps | tap_steps | UNet evals/item | CPU s/item | object mIoU | Δ vs 100-step (90% CI) | class mIoU | Pareto |",
         "|---|---:|---|---:|---:|---:|---|---:|:-:|"]
    for r in result["rows"]:
        ci = r.get("d_object_miou_90")
        d = f"{r['d_object_miou']:+.3f}" + (f" ({ci[0]:+.3f}, {ci[1]:+.3f})" if ci else "")
        b = "**" if key(r) in (key(ref), key(fast) if fast else None) else ""
        L.append(f"| {b}{r['sampler']}{b} | {r['steps']} | {r['tap_steps']} | {r['unet_evals']:.0f} | {r['seconds_per_item']:.3f} | "
                 f"{b}{r['object_miou']:.3f}{b} | {d} | {r['class_miou']:.3f} | {'✓' if r.get('pareto') else ''} |")
    return "\n".join(L)


def train_point(pipe, point: dict, seed: int, work: Path, n_val: int) -> dict:
    "mBO_i of a short GLASS run (the demo's size) on images generated with this point's settings, on held-out real scenes."
    from glass.io import asset_path
    from glass.toy.demo import demo_config, SIZES, train_and_evaluate
    from glass.toy.world import render_split, write_records
    from glass.generate import generate
    size = SIZES["full"]
    tag = f"{point['sampler']}-{point['steps']}-{point['tap_steps'].replace(':', '')}"
    cfg = demo_config(asset_path("toy-sd"), size, seed, **{"generate.sampler": point["sampler"], "generate.steps": point["steps"],
                                                           "generate.tap_steps": point["tap_steps"]})
    recs = work/"train_prompts.jsonl"
    if not recs.exists(): write_records(render_split("train", size.n_train, seed), recs)
    t0 = time.perf_counter()
    generate(cfg, recs, work/"gen"/tag, pipe=pipe, progress=False, sheet=0, cpu=True)
    gen_s = time.perf_counter() - t0
    m, _, t = train_and_evaluate(cfg, work/"gen"/tag, work/"runs"/tag, render_split("val", n_val, seed), progress=False)
    return {"mbo_i_dinosaur": m["protocols"]["dinosaur"]["mbo_i"], "mbo_i_glass": m["protocols"]["glass"]["mbo_i"],
            "train_steps": size.train_steps, "n_train": size.n_train, "n_val": n_val, "generate_s": gen_s, **t}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=64, help="generated items per point (default 64)")
    p.add_argument("--batch", type=int, default=32, help="items per pipeline call")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--resume", action="store_true", help="keep the points already in --out (same items and seed)")
    p.add_argument("--train", action="store_true", help="also train and evaluate a short GLASS run for the reference and the fast point")
    p.add_argument("--n-val", type=int, default=500, help="held-out real scenes for --train")
    p.add_argument("--work", default="/tmp/glass-pseudo-labels", help="folder for --train's shards and runs")
    p.add_argument("--grid", nargs="*", metavar="SAMPLER:N,N", help="points to run instead of the full grid, e.g. unipc:10,5")
    p.add_argument("--plot-only", action="store_true")
    p.add_argument("--out", default=str(HERE/"results"/"pseudo-labels-toy-cpu.json"))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads); os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = Path(a.out)
    old = json.loads(out.read_text()) if out.exists() and (a.resume or a.plot_only) else {}
    if a.plot_only:
        print(markdown_table(old)); return plot(old, out.with_suffix(".png"))
    same = old.get("items") == a.items and old.get("seed") == a.seed
    rows = old.get("rows", []) if same else []
    pipe, cfg, items = load_world(a.items, a.seed)
    g, done, keep = cfg.generate, {(r["sampler"], r["steps"], r["tap_steps"]) for r in rows}, {}
    grid = {k: tuple(int(n) for n in v.split(",")) for k, v in (x.split(":") for x in a.grid)} if a.grid else GRID
    for sampler, steps_list in grid.items():
        for steps in steps_list:
            specs = tap_choices(steps)
            if all((sampler, steps, s) in done for s in specs) and not (sampler, steps) == REFERENCE[:2]: continue
            images, masks, evals, cpu_s, wall_s = generate_point(pipe, items, replace(g, steps=steps), sampler, specs, a.batch)
            for s in specs:
                pred, ref, sc = scores(images, masks[s], items)
                keep[(sampler, steps, s)] = (pred, ref)
                row = {"sampler": sampler, "steps": steps, "tap_steps": s, "unet_evals": evals, "seconds_per_item": cpu_s,
                       "wall_seconds_per_item": wall_s, "object_miou": sc["object_miou"], "class_miou": sc["class_miou"],
                       "per_class": sc["per_class"], "n_objects": sc["n_objects"]}
                rows = [r for r in rows if (r["sampler"], r["steps"], r["tap_steps"]) != (sampler, steps, s)] + [row]
                print(f"{sampler:13s} {steps:4d} {s:8s} evals/item {evals:6.0f}  cpu s/item {cpu_s:6.3f}  "
                      f"object mIoU {sc['object_miou']:.4f}  class mIoU {sc['class_miou']:.4f}", flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"items": a.items, "seed": a.seed, "rows": rows}, indent=1))
    ref = next((r for r in rows if (r["sampler"], r["steps"], r["tap_steps"]) == REFERENCE), None)
    if ref is None or REFERENCE not in keep:
        print(f"no reference point {REFERENCE} in this run: rows written, no comparison"); return
    p0 = keep[REFERENCE]
    for r in rows:
        r["d_object_miou"] = r["object_miou"] - ref["object_miou"]
        k = (r["sampler"], r["steps"], r["tap_steps"])
        if k in keep and k != REFERENCE: r["d_object_miou_90"] = paired_interval(*keep[k], *p0)
    front, fast = pareto(rows), choose_fast(rows, ref)
    for r in rows: r["pareto"] = r in front
    result = {"what": "pseudo masks of generated toy images vs the colour oracle, per sampler, steps and tapped steps",
              "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores (shared), "
              f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)", "items": a.items, "seed": a.seed,
              "model": "glass/assets/toy-sd", "settings": {"resolution": g.resolution, "guidance_scale": g.guidance_scale,
              "refine_power": g.refine_power, "cross_res": g.cross_res, "fg_threshold": g.fg_threshold, "bg_threshold": g.bg_threshold},
              "reference": ref, "fast": fast, "rows": sorted(rows, key=lambda r: (r["unet_evals"], r["sampler"], r["tap_steps"]))}
    if a.train and fast:
        work = Path(a.work)
        for key, pt in (("reference", ref), ("fast", fast)):
            result[key]["training"] = train_point(pipe, pt, a.seed, work, a.n_val)
            print(f"training on {key} ({pt['sampler']}, {pt['steps']}, {pt['tap_steps']}): {result[key]['training']}", flush=True)
    out.write_text(json.dumps(result, indent=1))
    plot(result, out.with_suffix(".png"))
    print(f"\nreference {REFERENCE}: object mIoU {ref['object_miou']:.4f}, {ref['unet_evals']:.0f} UNet evaluations/item")
    print("Pareto front:", ", ".join(f"{r['sampler']}/{r['steps']}/{r['tap_steps']} ({r['unet_evals']:.0f}, {r['object_miou']:.3f})" for r in front))
    print("fast:", fast and f"{fast['sampler']} {fast['steps']} steps, tap_steps {fast['tap_steps']}: {fast['unet_evals']:.0f} evaluations "
          f"({ref['unet_evals'] / fast['unet_evals']:.1f}x fewer), object mIoU {fast['object_miou']:.4f} ({fast['d_object_miou']:+.4f})")
    print("\n" + markdown_table(result))
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
