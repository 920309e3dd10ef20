#!/usr/bin/env python
"""Benchmark pseudo-label generation: items/s and the overhead of the attention taps.

    python benchmarks/generate.py --size tiny                        # CPU, tiny random-weight pipeline
    python benchmarks/generate.py --size sd21-512 --device cuda      # SD 2.1 shapes (random weights), 512 px, fp16
    python benchmarks/generate.py --size sd21-512 --device cuda --steps 100                          # the paper's recipe
    python benchmarks/generate.py --size sd21-512 --device cuda --sampler dpm-solver++ --steps 10    # a faster one

Rows (same model, settings, prompts and seeds; the two pipeline rows interleaved run by run; median reported):
  * `pipeline`      : the Stable Diffusion pipeline call alone (no taps);
  * `pipeline+taps` : the same call with the taps installed (class-prompt cross-attention + self-attention sums);
  * `pseudo labels` : `glass.generate.generate_batch`: taps, refinement, resize, VAE latent;
  * `end to end`    : `glass.generate.generate` writing shards (prompts, shards, manifest; no contact sheet).
Beside the rows: the refinement alone, and the instance splitting alone (`glass.instances.instance_maps` with each of
`components`, `attention`, `auto`, on the class maps and tapped self-attention of one batch), per item and as a share
of the `pseudo labels` row's time per item (issue: under 10% on a GPU). With random weights the class segments are
arbitrary, so the splitting's cost is that of these segments, not of real images.
The tap overhead is median(pipeline+taps) / median(pipeline), in wall time on a GPU (synchronised) and in this
process's CPU time on a CPU (with 1 thread that is robust to other work on a shared machine; wall time is reported too).
Peak memory: CUDA max allocated per row, or the process peak RSS on a CPU. Printed as a table and written as JSON (`--out`). Not a test: nothing here asserts a time.
"""
from __future__ import annotations
import argparse, json, os, platform, resource, statistics, sys, tempfile, time
from pathlib import Path

import torch

from glass.core import preset
from glass.generate import generate, generate_batch, generate_images, load_pipeline, make_item
from glass.instances import instance_maps
from glass.refine import label_maps_from_taps

SIZES = {
    # generation px, latent-side cross/self resolutions, train px, batch, steps, precision
    "tiny": dict(resolution=128, cross_res=8, self_res=16, train_resolution=64, batch=4, steps=10, precision="fp32"),
    "sd21-512": dict(resolution=512, cross_res=16, self_res=32, train_resolution=256, batch=8, steps=20, precision="fp16"),
}
CAPTIONS = ["a man walking a dog down the street", "a cat sleeping on a couch next to a tv", "a red car near a bus",
            "a woman riding a horse", "two birds on a chair", "a person sitting at a table with a cat",
            "a bicycle on the road", "a dog and a cat in a room"]


def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()


def reset_peak(device):
    if device.type == "cuda": torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()


def peak_memory_mb(device) -> float:
    if device.type == "cuda": return torch.cuda.max_memory_allocated() / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (KiB on Linux)


def model_folder(size: str, root: Path) -> str:
    from glass import testing
    if size == "tiny": return str(testing.tiny_models()["sd"])
    sd = root / "sd21"
    if not (sd / "model_index.json").exists(): testing.sd21_pipeline(sd)
    return str(sd)


def timed(fn, device):
    "(seconds, cpu seconds, result): wall time (device-synchronised) and this process's CPU time."
    sync(device); t, c = time.perf_counter(), time.process_time(); r = fn(); sync(device)
    return time.perf_counter() - t, time.process_time() - c, r


def instance_split_seconds(taps, masks, items: list, g, device, runs: int = 3) -> dict:
    """Seconds per item (median of `runs`) of each instance method on one batch's class `masks` and tapped self-attention
    (its extraction included)."""
    from dataclasses import replace
    caps, classes = [it.get("caption", "") for it in items], [it["classes"] for it in items]
    out = {}
    for method in ("components", "attention", "auto"):
        gi = replace(g, instances=method)
        def split():
            sa = taps.self_attention(g.self_res) if method != "components" else None
            return instance_maps(masks, sa, caps, classes, gi)
        out[method] = statistics.median(timed(split, device)[0] for _ in range(runs)) / len(items)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=list(SIZES), default="tiny", help="model shapes and generation settings")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--runs", type=int, default=None, help="timed runs per row, interleaved (median reported; default 25 tiny, 3 sd21-512)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs of each row first")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the size's)")
    p.add_argument("--batch", type=int, default=None, help="images per pipeline call (default: the size's)")
    p.add_argument("--resolution", type=int, default=None, help="generation px (default: the size's); cross/self res scale with it")
    p.add_argument("--sampler", default="default", help="generate.sampler (default: the pipeline's own scheduler; see glass.samplers)")
    p.add_argument("--tap-steps", default="all", help="generate.tap_steps: all, last:K or every:N")
    p.add_argument("--guidance-scale", type=float, default=7.5, help="classifier-free guidance (7.5: CFG on, cond half read)")
    p.add_argument("--models", default=os.environ.get("GLASS_BENCH_MODELS"),
                   help="folder for the random-weight SD 2.1 folder (sd21-512; reused when present; env GLASS_BENCH_MODELS)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", default=None, help="JSON output (default benchmarks/results/generate-<size>-<device>.json)")
    a = p.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available() else ("cpu" if a.device == "auto" else a.device))
    s = dict(SIZES[a.size])
    if a.resolution:
        f = a.resolution / s["resolution"]
        s.update(resolution=a.resolution, cross_res=int(s["cross_res"] * f), self_res=int(s["self_res"] * f),
                 train_resolution=int(s["train_resolution"] * f))
    s["batch"], s["steps"] = a.batch or s["batch"], a.steps or s["steps"]
    runs = a.runs or (25 if a.size == "tiny" else 3)
    t0 = time.perf_counter()
    folder = model_folder(a.size, Path(a.models or tempfile.mkdtemp(prefix="glass-bench-")))
    build_s = time.perf_counter() - t0
    cfg = preset("coco", **{"decoder.model": folder, "generate.resolution": s["resolution"], "generate.steps": s["steps"],
                            "generate.cross_res": s["cross_res"], "generate.self_res": s["self_res"],
                            "generate.train_resolution": s["train_resolution"], "generate.batch_size": s["batch"],
                            "generate.items_per_shard": s["batch"], "generate.precision": s["precision"],
                            "generate.guidance_scale": a.guidance_scale, "generate.sampler": a.sampler,
                            "generate.tap_steps": a.tap_steps})
    g = cfg.generate
    pipe = load_pipeline(cfg, device)
    items = [make_item({"id": i, "caption": CAPTIONS[i % len(CAPTIONS)]}, i, cfg) for i in range(s["batch"])]

    tap_bytes = {}
    def with_taps():
        im, taps = generate_images(pipe, items, g, taps=True)
        tap_bytes["accumulator"] = taps.nbytes
        return im, taps
    rows_fn = {"pipeline": lambda: generate_images(pipe, items, g, taps=False),
               "pipeline+taps": with_taps,
               "pseudo labels": lambda: generate_batch(pipe, items, g)}
    times, cpu = {k: [] for k in rows_fn}, {k: [] for k in rows_fn}
    peaks = {k: 0.0 for k in rows_fn}
    # phase 1 interleaves the two pipeline rows (load drift hits both alike); phase 2 times the pseudo-label row on
    # its own: on a CPU its large transient tensors change the allocator's state (page faults) for whatever runs next
    for phase in (["pipeline", "pipeline+taps"], ["pseudo labels"]):
        for r in range(a.warmup + runs):
            for k in phase:
                reset_peak(device)
                dt, dc, _ = timed(rows_fn[k], device)
                if r >= a.warmup: times[k].append(dt); cpu[k].append(dc)
                peaks[k] = max(peaks[k], peak_memory_mb(device))
    # refinement alone, from one tapped run (which also counts the UNet evaluations per item)
    from glass.samplers import UnetEvaluations
    with UnetEvaluations(pipe.unet) as ev: _, taps = generate_images(pipe, items, g, taps=True)
    refine_s, _, masks = timed(lambda: label_maps_from_taps(taps, pipe.tokenizer, [it["classes"] for it in items], g.resolution, g), device)
    split_s = instance_split_seconds(taps, masks, items, g, device, 3 if a.size == "tiny" else 1)
    # end to end: shards on disk for `runs` batches
    with tempfile.TemporaryDirectory() as d:
        inp = Path(d) / "in.jsonl"
        inp.write_text("".join(json.dumps({"id": i, "caption": CAPTIONS[i % len(CAPTIONS)]}) + "\n" for i in range(runs * s["batch"])))
        reset_peak(device)
        e2e_s, _, summ = timed(lambda: generate(cfg, inp, Path(d) / "out", pipe=pipe, progress=False, sheet=0), device)
        e2e_peak = peak_memory_mb(device)

    med = {k: statistics.median(v) for k, v in times.items()}
    medc = {k: statistics.median(v) for k, v in cpu.items()}
    basis = times if device.type == "cuda" else cpu           # what the overhead is computed from
    pair = [t / p for t, p in zip(basis["pipeline+taps"], basis["pipeline"])]
    overhead = statistics.median(basis["pipeline+taps"]) / statistics.median(basis["pipeline"])
    overhead_min = min(basis["pipeline+taps"]) / min(basis["pipeline"])       # least disturbed runs
    rows = [dict(row=k, median_s=med[k], min_s=min(times[k]), max_s=max(times[k]), cpu_median_s=medc[k],
                 items_per_s=s["batch"] / med[k], peak_memory_mb=peaks[k], ratio_to_pipeline=med[k] / med["pipeline"],
                 cpu_ratio_to_pipeline=medc[k] / medc["pipeline"]) for k in rows_fn]
    rows.append(dict(row="end to end", median_s=e2e_s, items_per_s=summ["items_written"] / e2e_s, peak_memory_mb=e2e_peak,
                     items=summ["items_written"], ratio_to_pipeline=(e2e_s / summ["items_written"] * s["batch"]) / med["pipeline"]))
    dev_name = torch.cuda.get_device_name() if device.type == "cuda" else (platform.processor() or platform.machine())
    print(f"\npseudo-label generation, size={a.size}, device={device} ({dev_name}), torch {torch.__version__}, "
          f"threads={torch.get_num_threads()}")
    print(f"settings: {s['resolution']} px, sampler {a.sampler}, {s['steps']} steps ({ev.per_item(len(items)):.0f} UNet "
          f"evaluations per item), taps {a.tap_steps}, CFG {a.guidance_scale}, batch {s['batch']}, "
          f"{s['precision']} ({str(pipe.unet.dtype).split('.')[-1]}), cross {s['cross_res']}², self {s['self_res']}², "
          f"train {s['train_resolution']} px; {runs} timed runs (+{a.warmup} warm-up) per row")
    print(f"{'row':16s} {'median s':>9s} {'min s':>8s} {'items/s':>8s} {'x pipeline':>10s} {'cpu s':>8s} {'cpu x':>7s} {'peak MB':>8s}")
    for r in rows:
        cs = f"{r['cpu_median_s']:8.3f} {r['cpu_ratio_to_pipeline']:6.3f}x" if "cpu_median_s" in r else f"{'':8s} {'':7s}"
        print(f"{r['row']:16s} {r['median_s']:9.3f} {r.get('min_s', r['median_s']):8.3f} {r['items_per_s']:8.2f} "
              f"{r['ratio_to_pipeline']:9.3f}x {cs} {r['peak_memory_mb']:8.0f}")
    print(f"tap overhead ({'wall' if device.type == 'cuda' else 'CPU'} time, median with taps / median without): {overhead:.3f}x  "
          f"(fastest runs: {overhead_min:.3f}x; per-run pairs: median {statistics.median(pair):.3f}x, "
          f"range {min(pair):.3f}-{max(pair):.3f}; wall-time medians: {med['pipeline+taps'] / med['pipeline']:.3f}x)")
    print(f"tap accumulator: {tap_bytes['accumulator'] / 2**20:.2f} MiB for {s['batch']} items; "
          f"refinement alone: {refine_s / s['batch'] * 1e3:.1f} ms/item")
    per_item = med["pseudo labels"] / s["batch"]
    print("instance splitting alone: " + ", ".join(f"{k} {v * 1e3:.1f} ms/item ({v / per_item:.1%} of a pseudo-labelled item)"
                                                    for k, v in split_s.items()))
    tag = "" if (a.sampler, a.tap_steps) == ("default", "all") else f"-{a.sampler}-{s['steps']}"
    out = Path(a.out or Path(__file__).parent / "results" / f"generate-{a.size}-{device.type}{tag}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"size": a.size, "device": str(device), "device_name": dev_name, "torch": torch.__version__,
                               "date": time.strftime("%Y-%m-%d"), "threads": torch.get_num_threads(), "settings": s,
                               "guidance_scale": a.guidance_scale, "sampler": a.sampler, "tap_steps": a.tap_steps,
                               "unet_evals_per_item": ev.per_item(len(items)), "runs": runs, "warmup": a.warmup,
                               "tap_overhead": overhead, "tap_overhead_basis": "wall" if device.type == "cuda" else "cpu",
                               "tap_overhead_fastest": overhead_min, "tap_overhead_pairs": pair, "tap_overhead_wall": med["pipeline+taps"] / med["pipeline"],
                               "tap_accumulator_bytes": tap_bytes["accumulator"], "refine_s_per_item": refine_s / s["batch"],
                               "instances_s_per_item": split_s, "instances_share_of_item": {k: v / per_item for k, v in split_s.items()},
                               "model_build_s": build_s, "times_s": times, "cpu_times_s": cpu, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
