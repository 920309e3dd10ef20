#!/usr/bin/env python
"""Benchmark the real GLASS training step (forward + backward + optimiser) and compare the speed levers side by side.

    python benchmarks/train_step.py --size tiny                 # CPU: tiny random-weight models
    python benchmarks/train_step.py --size sd21-256 --device cuda  # SD 2.1 / DINOv2 ViT-B shapes, random weights, batch 32

Each variant reports the median step time over `--steps` timed steps after `--warmup` (device-synchronised), images/s,
the FLOPs of one step counted with torch.utils.flop_counter, achieved FLOP/s, the ratio to a dense matmul peak measured
in the same run on the same device and dtype, and peak memory. Ratios are against the first (baseline) variant.
Results are printed as a table and written as JSON (`--out`). Not a test: nothing here asserts a time.
"""
from __future__ import annotations
import argparse, json, os, platform, resource, statistics, sys, tempfile, time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from glass.core import preset, seed_everything
from glass.model import GLASS
from glass.train import make_optimizer

SIZES = {
    # name: (batch, encoder px, decoder px, mask px, slots, slot size)
    "tiny": dict(batch=8, enc=224, dec=128, mask=32, slots=7, slot_size=32),   # 224 px -> 16x16 tokens
    "sd21-256": dict(batch=32, enc=448, dec=256, mask=256, slots=7, slot_size=768),
}


def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()


def model_folders(size: str, root: Path) -> dict:
    "Random-weight model folders for `size` (tiny: glass.testing.tiny_models; sd21-256: full SD 2.1 / DINOv2-base shapes)."
    from glass import testing
    if size == "tiny":
        return {k: str(v) for k, v in testing.tiny_models().items()}
    sd, dino = root / "sd21", root / "dinov2-base"
    if not (sd / "model_index.json").exists(): testing.sd21_pipeline(sd)
    if not (dino / "config.json").exists(): testing.dinov2_base(dino)
    return {"sd": str(sd), "dinov2": str(dino)}


def make_config(size: str, folders: dict, precision: str):
    s = SIZES[size]
    o = {"encoder.model": folders["dinov2"], "decoder.model": folders["sd"], "encoder.resolution": s["enc"],
         "decoder.resolution": s["dec"], "slots.num_slots": s["slots"], "slots.slot_size": s["slot_size"],
         "slots.mlp_hidden": s["slot_size"], "guidance.mask_resolution": s["mask"], "train.precision": precision,
         "train.batch_size": s["batch"]}
    return preset("coco", **o)


def make_batch(model: GLASS, size: str, device, cached: bool) -> dict:
    "A synthetic batch: encoder input (or cached features), scaled latents, label maps with up to 3 rectangles."
    s, g = SIZES[size], torch.Generator().manual_seed(0)
    B, f = s["batch"], model.decoder.vae_scale_factor
    pix = torch.randn(B, 3, s["enc"], s["enc"], generator=g)
    lat = torch.randn(B, model.decoder.latent_channels, s["dec"] // f, s["dec"] // f, generator=g)
    masks = torch.zeros(B, s["mask"], s["mask"], dtype=torch.uint8)
    for b in range(B):
        for k in range(1, 1 + b % 3 + 1):
            y, x = torch.randint(0, s["mask"] // 2, (2,), generator=g).tolist()
            masks[b, y:y + s["mask"] // 3, x:x + s["mask"] // 3] = k
    batch = {"latents": lat.to(device), "masks": masks.to(device)}
    if cached:
        with torch.no_grad(): batch["features"] = model.features(pix.to(device)).to(device)
    else:
        batch["pixel_values"] = pix.to(device)
    return batch


def matmul_peak(device, dtype, n: int, reps: int = 10) -> float:
    "Achieved FLOP/s of an n x n dense matmul in `dtype` on `device` (best of `reps`)."
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3): a @ b
    best = float("inf")
    for _ in range(reps):
        sync(device); t = time.perf_counter(); a @ b; sync(device); best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def device_name(device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())


def peak_memory_mb(device) -> float:
    if device.type == "cuda": return torch.cuda.max_memory_allocated() / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (KiB on Linux)


def run_variant(name, size, folders, device, *, precision="fp32", cached=False, compile=False, fused=False,
                channels_last=False, steps=20, warmup=5):
    "Time one lever combination: returns a dict of figures."
    seed_everything(0)
    if device.type == "cuda": torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    cfg = make_config(size, folders, precision if device.type == "cuda" else "fp32")
    cfg.train.fused_optimizer, cfg.train.channels_last = fused, channels_last   # the settings glass-train reads
    model = GLASS(cfg, device=device).train()
    if cfg.train.channels_last and device.type == "cuda": model.decoder.unet.to(memory_format=torch.channels_last)
    if compile:
        model.slot_attention = torch.compile(model.slot_attention)
        model.decoder.unet = torch.compile(model.decoder.unet)
    params = model.trainable_parameters()
    opt = make_optimizer(params, cfg.train, device.type)
    batch = make_batch(model, size, device, cached)
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    ctx = (lambda: torch.autocast(device.type, dtype=amp)) if amp is not None else nullcontext
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" and device.type == "cuda" else None

    def step():
        with ctx(): out = model.training_step(batch)
        loss = out["loss"]
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler: scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, cfg.train.grad_clip)
        (scaler.step(opt), scaler.update()) if scaler else opt.step()
        opt.zero_grad(set_to_none=True)
        return out

    for _ in range(warmup): step()
    sync(device)
    times = []
    for _ in range(steps):
        sync(device); t = time.perf_counter(); step(); sync(device); times.append(time.perf_counter() - t)
    with FlopCounterMode(display=False) as fc: step()
    flops = fc.get_total_flops()
    med = statistics.median(times)
    return dict(variant=name, precision=precision, cached=cached, compile=compile, fused=fused, channels_last=channels_last,
                batch=SIZES[size]["batch"], step_s=med, step_s_p10=sorted(times)[len(times) // 10],
                images_per_s=SIZES[size]["batch"] / med, gflop_per_step=flops / 1e9, tflops_achieved=flops / med / 1e12,
                peak_memory_mb=peak_memory_mb(device))


def variants_for(device, only=None):
    "The levers that apply on this device, baseline first."
    v = [("baseline fp32", {}), ("cached features", {"cached": True})]
    if device.type == "cpu":
        v += [("bf16 autocast", {"precision": "bf16"}), ("cached + bf16", {"cached": True, "precision": "bf16"}),
              ("compile", {"compile": True}), ("cached + compile", {"cached": True, "compile": True})]
    else:
        v = [v[0], ("bf16", {"precision": "bf16"}), ("bf16 + cached", {"precision": "bf16", "cached": True}),
             ("bf16 + cached + fused + channels_last", {"precision": "bf16", "cached": True, "fused": True, "channels_last": True}),
             ("fp16 + cached + fused", {"precision": "fp16", "cached": True, "fused": True}), v[1],
             ("bf16 + cached + fused + compile", {"precision": "bf16", "cached": True, "fused": True, "compile": True})]
    return [x for x in v if not only or x[0] in only]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=list(SIZES), default="tiny", help="model shapes and batch")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--steps", type=int, default=20, help="timed steps per variant (median reported)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps per variant first (compile happens here)")
    p.add_argument("--only", nargs="*", help="run only these variants (names as printed)")
    p.add_argument("--models", default=None, help="folder for the random-weight model folders (sd21-256 only; reused)")
    p.add_argument("--batch", type=int, default=None, help="override the size's batch (e.g. 1 for a CPU smoke test of sd21-256)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", default=None, help="JSON output (default benchmarks/results/train_step-<size>-<device>.json)")
    a = p.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    if a.batch: SIZES[a.size]["batch"] = a.batch
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available() else ("cpu" if a.device == "auto" else a.device))
    root = Path(a.models or tempfile.mkdtemp(prefix="glass-bench-"))
    folders = model_folders(a.size, root)
    peak_dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    peak = matmul_peak(device, peak_dtype, 1024 if device.type == "cpu" else 8192)
    out = Path(a.out or Path(__file__).parent / "results" / f"train_step-{a.size}-{device.type}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    def save():  # after every variant, so a run cut short still leaves its figures
        out.write_text(json.dumps({"size": a.size, "device": str(device), "device_name": device_name(device),
                                   "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
                                   "matmul_peak_tflops": peak / 1e12, "matmul_dtype": str(peak_dtype).split(".")[-1],
                                   "threads": torch.get_num_threads(), "rows": rows}, indent=2))
    for name, kw in variants_for(device, a.only):
        try:
            r = run_variant(name, a.size, folders, device, steps=a.steps, warmup=a.warmup, **kw)
        except Exception as e:  # a lever that does not work here is reported, not hidden
            r = dict(variant=name, error=f"{type(e).__name__}: {e}".splitlines()[0][:200])
        rows.append(r); print(json.dumps(r), file=sys.stderr); save()
    base = next((r for r in rows if "step_s" in r), None)
    print(f"\nGLASS training step, size={a.size}, device={device} ({device_name(device)}), "
          f"torch {torch.__version__}, threads={torch.get_num_threads()}")
    print(f"dense matmul peak ({str(peak_dtype).split('.')[-1]}): {peak / 1e12:.3f} TFLOP/s")
    print(f"{'variant':42s} {'step ms':>9s} {'img/s':>8s} {'GFLOP':>9s} {'TFLOP/s':>8s} {'% peak':>7s} {'speed-up':>8s} {'peak MB':>8s}")
    for r in rows:
        if "error" in r: print(f"{r['variant']:42s} failed: {r['error']}"); continue
        r["fraction_of_matmul_peak"] = r["tflops_achieved"] * 1e12 / peak
        r["speedup_vs_baseline"] = base["step_s"] / r["step_s"]
        print(f"{r['variant']:42s} {r['step_s'] * 1e3:9.1f} {r['images_per_s']:8.1f} {r['gflop_per_step']:9.2f} "
              f"{r['tflops_achieved']:8.4f} {100 * r['fraction_of_matmul_peak']:6.1f}% {r['speedup_vs_baseline']:7.2f}x {r['peak_memory_mb']:8.0f}")
    save(); print(f"wrote {out}")


if __name__ == "__main__":
    main()
