#!/usr/bin/env python
"""GPU-hours of the whole path from real images to a trained model, for VOC and COCO, on one GPU.

    python benchmarks/pipeline_cost.py          # prints the VOC and COCO tables, writes results/pipeline-cost.json

Stages: captions (BLIP-2 on every real training image), generation + pseudo masks (one generated item per real
image), feature caching (DINOv2 on every generated item; only when the recipe caches) and slot training. Two recipes:

  * `paper`: the model's own sampler, 100 steps, CFG, attention read at every step; DINOv2 run in every training step
    (no cache), bf16 autocast for the frozen parts;
  * `fast`: the `fast` point of `results/pseudo-labels-toy-cpu.json` (sampler and steps; fewer UNet evaluations),
    DINOv2 features cached once, the fastest measured training step (bf16 + cached + fused AdamW + torch.compile).

Where every figure comes from (each printed row says which):

  * measured: the training step times are `results/train_step-sd21-256-cuda.json` (H100 80GB, 2026-11-26, batch 32,
    SD 2.1 / DINOv2 ViT-B shapes); the DINOv2 cost per image is the difference of its bf16 rows with and without
    cached features (same run);
  * counted: FLOPs per item with `torch.utils.flop_counter` over the full-size shapes on the meta device (no weights,
    no GPU): the SD 2.1 UNet (`glass.testing.sd21_unet_config`) at 512 px (latent 64x64), the attention taps
    (`glass.hooks.attention_taps`: class-prompt cross-attention at 16x16, self-attention at 32x32), the VAE decoder at
    512 px and encoder at 256 px, the OpenCLIP-H text encoder (SD 2.1's: 23 layers, width 1024) and BLIP-2 OPT-2.7b
    (ViT-g/14 at 224 px, Q-Former, OPT-2.7b over 32 query + `--caption-tokens` tokens);
  * extrapolated: counted FLOPs turned into time at the FLOP rate the training step *reached* on the H100 in bf16
    without compile (`--tflops`, default from the JSON's `bf16` row). No generation or captioning was timed on a GPU:
    these rows are estimates until `benchmarks/gpu.sh` measures them. Autoregressive decoding is memory-bound, so the
    caption row is a lower bound.
Not a test: nothing here asserts.
"""
from __future__ import annotations
import argparse, json, time
from pathlib import Path

import torch

HERE = Path(__file__).parent
DATASETS = {"VOC": dict(items=12_000, steps=250_000), "COCO": dict(items=118_000, steps=500_000)}
PAPER = dict(sampler="default", steps=100, tap_steps="all")


def _count(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    with torch.no_grad(), FlopCounterMode(display=False) as f: fn()
    return float(f.get_total_flops())


def sd21_flops(resolution: int = 512, train_resolution: int = 256) -> dict:
    "FLOPs of SD 2.1's parts at generation shapes, counted on the meta device: per UNet evaluation, per tapped step, ..."
    from diffusers import UNet2DConditionModel, AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel
    from glass.testing import sd21_unet_config
    from glass.hooks import attention_taps
    L = resolution // 8
    with torch.device("meta"):
        unet = UNet2DConditionModel(**sd21_unet_config())
        # the VAE and text-encoder shapes of glass.testing.sd21_pipeline (stabilityai/stable-diffusion-2-1)
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4)
        text = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                                            num_attention_heads=16, hidden_act="gelu", projection_dim=512))
    m = lambda *s: torch.zeros(*s, device="meta")
    run = lambda: unet(m(2, 4, L, L), torch.tensor([500, 500], device="meta"), encoder_hidden_states=m(2, 77, 1024))
    plain = _count(run)
    with attention_taps(unet, L, 16 * L // 64, 32 * L // 64) as taps:
        taps.reset(m(1, 77, 1024))
        tapped = _count(run)
    ids = torch.zeros(1, 77, dtype=torch.long, device="meta")
    return {"unet_eval": plain / 2, "taps_per_step": tapped - plain,
            "refine": 2 * 2 * (32 * 32) ** 3,                           # A^4 as two squarings of the 1024x1024 matrix
            "vae_decode": _count(lambda: vae.decode(m(1, 4, L, L))),
            "vae_encode_train": _count(lambda: vae.encode(m(1, 3, train_resolution, train_resolution))),
            "text_encoder": 3 * _count(lambda: text(ids))}             # unconditional, caption prompt, class prompt


def blip2_flops(new_tokens: int = 30) -> float:
    """FLOPs of one BLIP-2 OPT-2.7b caption: the ViT-g/14 vision model at 224 px counted on the meta device; the Q-Former
    (32 queries) and OPT-2.7b (32 query + `new_tokens` tokens) as 2 x parameters x tokens (their masks cannot run on meta)."""
    from transformers import Blip2Config, Blip2ForConditionalGeneration, OPTConfig
    cfg = Blip2Config(text_config=OPTConfig(hidden_size=2560, num_hidden_layers=32, ffn_dim=10240, num_attention_heads=32,
                                            vocab_size=50272, word_embed_proj_dim=2560).to_dict())
    with torch.device("meta"): model = Blip2ForConditionalGeneration(cfg).requires_grad_(False)
    vision = _count(lambda: model.vision_model(pixel_values=torch.zeros(1, 3, 224, 224, device="meta")))
    n = lambda m, skip=(): sum(p.numel() for k, p in m.named_parameters() if not any(s in k for s in skip))
    q = cfg.num_query_tokens
    return vision + 2 * n(model.qformer) * q + 2 * n(model.language_model, ("embed_tokens", "embed_positions")) * (q + new_tokens)


def measured_training(path: Path) -> dict:
    "Training step rows of the H100 run by variant, and the DINOv2 cost per image (bf16 rows with and without cache)."
    d = json.loads(path.read_text())
    rows = {r["variant"]: r for r in d["rows"]}
    enc = (rows["bf16"]["step_s"] - rows["bf16 + cached"]["step_s"]) / rows["bf16"]["batch"]
    return {"device": d["device_name"], "date": d["date"], "rows": rows, "dinov2_s_per_image": enc}


def gen_flops_per_item(f: dict, evals: float, tapped_steps: int) -> float:
    "UNet evaluations + taps + refinement + VAE decode at 512 + VAE encode at 256 + text encoder, per generated item."
    return evals * f["unet_eval"] + tapped_steps * f["taps_per_step"] + f["refine"] + f["vae_decode"] + f["vae_encode_train"] + f["text_encoder"]


def recipe_table(name: str, ds: dict, point: dict, f: dict, cap_flops: float, train: dict, tflops: float, fast: bool) -> list:
    "Rows (stage, GPU-hours, per-unit figure, source) of one recipe on one data set."
    from glass.samplers import tapped_step_count
    evals = 2 * point["steps"]                                          # CFG: two latents per item and step
    gen = gen_flops_per_item(f, evals, tapped_step_count(point["tap_steps"], point["steps"]))
    tr = train["rows"]["bf16 + cached + fused + compile" if fast else "bf16"]
    rows = [("captions (BLIP-2 OPT-2.7b)", ds["items"] * cap_flops / tflops / 3600, f"{cap_flops / 1e12:.2f} TFLOP/image",
             f"extrapolated: counted FLOPs at {tflops / 1e12:.0f} TFLOP/s (lower bound)"),
            (f"generation + pseudo masks ({point['sampler']}, {point['steps']} steps, taps {point['tap_steps']})",
             ds["items"] * gen / tflops / 3600, f"{gen / 1e12:.1f} TFLOP/item ({evals} UNet evals)",
             f"extrapolated: counted FLOPs at {tflops / 1e12:.0f} TFLOP/s")]
    if fast:
        rows.append(("feature caching (DINOv2 ViT-B/14, 448 px)", ds["items"] * train["dinov2_s_per_image"] / 3600,
                     f"{train['dinov2_s_per_image'] * 1e3:.2f} ms/image", f"measured: {train['device']}, {train['date']} (bf16 step minus cached step)"))
    rows.append((f"training, {ds['steps'] // 1000}K steps of 32 ({tr['variant']})", ds["steps"] * tr["step_s"] / 3600,
                 f"{tr['step_s'] * 1e3:.1f} ms/step", f"measured: {train['device']}, {train['date']}"))
    return rows


def print_table(title: str, tables: dict):
    print(f"\n{title}")
    print(f"| recipe | stage | GPU-hours | per unit | source |\n|---|---|---:|---:|---|")
    for recipe, rows in tables.items():
        for stage, h, unit, src in rows: print(f"| {recipe} | {stage} | {h:.2f} | {unit} | {src} |")
        print(f"| {recipe} | **total** | **{sum(r[1] for r in rows):.2f}** | | |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-json", default=str(HERE/"results"/"train_step-sd21-256-cuda.json"))
    p.add_argument("--sweep-json", default=str(HERE/"results"/"pseudo-labels-toy-cpu.json"), help="where the `fast` point is read")
    p.add_argument("--fast", metavar="SAMPLER:STEPS:TAPS", help="override the fast point, e.g. dpm-solver++:20:all")
    p.add_argument("--tflops", type=float, default=None, help="achieved TFLOP/s assumed for generation and captions")
    p.add_argument("--caption-tokens", type=int, default=30, help="new tokens per BLIP-2 caption")
    p.add_argument("--out", default=str(HERE/"results"/"pipeline-cost.json"))
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    train = measured_training(Path(a.train_json))
    tflops = (a.tflops * 1e12) if a.tflops else train["rows"]["bf16"]["tflops_achieved"] * 1e12
    if a.fast:
        s, n, t = a.fast.split(":"); fast = dict(sampler=s, steps=int(n), tap_steps=t)
    else:
        fp = json.loads(Path(a.sweep_json).read_text())["fast"]
        fast = {k: fp[k] for k in ("sampler", "steps", "tap_steps")}
    f = sd21_flops(); cap = blip2_flops(a.caption_tokens)
    print(f"counted FLOPs (meta device, full-size shapes): UNet {f['unet_eval'] / 1e12:.3f} TFLOP per evaluation at 512 px; "
          f"taps {f['taps_per_step'] / 1e9:.1f} GFLOP per tapped step; VAE decode 512 px {f['vae_decode'] / 1e12:.2f} TFLOP; "
          f"VAE encode 256 px {f['vae_encode_train'] / 1e12:.2f} TFLOP; text encoder x3 {f['text_encoder'] / 1e9:.0f} GFLOP; "
          f"BLIP-2 caption {cap / 1e12:.2f} TFLOP")
    print(f"assumed achieved rate for generation and captions: {tflops / 1e12:.1f} TFLOP/s (the training step's, bf16, "
          f"{train['device']}, measured {train['date']})")
    out = {"date": time.strftime("%Y-%m-%d"), "flops": f, "blip2_caption_flops": cap, "assumed_tflops": tflops / 1e12,
           "training": {k: v["step_s"] for k, v in train["rows"].items()}, "dinov2_s_per_image": train["dinov2_s_per_image"],
           "paper": PAPER, "fast": fast, "datasets": {}}
    for name, ds in DATASETS.items():
        tables = {"paper": recipe_table(name, ds, PAPER, f, cap, train, tflops, fast=False),
                  "fast": recipe_table(name, ds, fast, f, cap, train, tflops, fast=True)}
        print_table(f"{name}: {ds['items']:,} generated items, {ds['steps']:,} training steps, one GPU ({train['device']})", tables)
        out["datasets"][name] = {k: [dict(zip(("stage", "gpu_hours", "per_unit", "source"), r)) for r in v] for k, v in tables.items()}
        out["datasets"][name]["totals"] = {k: sum(r[1] for r in v) for k, v in tables.items()}
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(f"\nwrote {a.out}")


if __name__ == "__main__":
    main()
