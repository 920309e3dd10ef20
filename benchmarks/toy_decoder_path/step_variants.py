"""Seconds per training step of the toy UNet (batch 64, random inputs) and of the toy VAE, under variants that keep
the model's arithmetic: channels-last memory, `torch.compile`, diffusers' non-fused attention processor, one UNet call
of 64 items against the recipe's two (48 prompt items, 16 layout items); and VAE batch 64 / 32 with and without the
self-attention layer of its middle block. Then two variants that change the arithmetic: bfloat16 autocast (UNet, the
recipe's two calls; VAE at batch 64) and one attention head of 48 channels instead of four of 12 (UNet). Two torch
threads, as `glass-demo --retrain` uses on this 2-core machine; the kernels PyTorch dispatches to are printed first.

  python benchmarks/toy_decoder_path/step_variants.py [unet|vae|all] [--compile]"""
import argparse, contextlib, time
import torch
from glass.toy.model import build_toy_parts, quiet_libraries, TOY_MAX_TOKENS, LAYOUT_SLOTS

def autocast_if(on: bool):
    "bfloat16 autocast on the CPU when `on`, else nothing."
    return torch.autocast("cpu", dtype=torch.bfloat16) if on else contextlib.nullcontext()

def seconds_per(step, warm: int = 2, n: int = 8) -> float:
    "Mean seconds of `n` calls of `step` after `warm` untimed ones."
    for _ in range(warm): step()
    t0 = time.perf_counter()
    for _ in range(n): step()
    return (time.perf_counter() - t0) / n

def unet_step(variant: str, batch: int = 64):
    "A closure running one UNet + text-encoder training step of `variant` on fixed random inputs."
    p = build_toy_parts(0); unet, te = p["unet"], p["text_encoder"]
    ids = torch.randint(1, 20, (batch, TOY_MAX_TOKENS)); z = torch.randn(batch, 4, 16, 16); t = torch.randint(0, 1000, (batch,))
    if variant == "channels_last": unet = unet.to(memory_format=torch.channels_last); z = z.contiguous(memory_format=torch.channels_last)
    if variant == "one_head": unet = build_toy_parts(0, heads=1)["unet"]
    if variant == "attn_processor":
        from diffusers.models.attention_processor import AttnProcessor
        unet.set_attn_processor(AttnProcessor())
    opt = torch.optim.AdamW(list(unet.parameters()) + [q for q in te.parameters() if q.requires_grad], 1e-3)
    f = torch.compile(unet) if variant == "compile" else unet
    n = batch * 3 // 4
    def step():
        h = te(ids).last_hidden_state
        if variant in ("two_calls", "bf16", "one_head"):
            with autocast_if(variant == "bf16"):
                a = f(z[:n], t[:n], encoder_hidden_states=h[:n]).sample.float()
                b = f(z[n:], t[n:], encoder_hidden_states=h[n:, :LAYOUT_SLOTS]).sample.float()
            loss = (a - z[:n]).pow(2).sum() + (b - z[n:]).pow(2).sum()
        else: loss = (f(z, t, encoder_hidden_states=h).sample - z).pow(2).sum()
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    return step

def vae_step(attention: bool, batch: int, bf16: bool = False):
    """A closure running one training step of the toy VAE (with or without its middle attention) at `batch`, under
    bfloat16 autocast when `bf16`."""
    vae = build_toy_parts(0, vae_attention=attention)["vae"]
    x = torch.rand(batch, 3, 32, 32) * 2 - 1
    opt = torch.optim.Adam(vae.parameters(), 2e-3)
    def step():
        with autocast_if(bf16): d = vae.encode(x).latent_dist; r = vae.decode(d.sample()).sample.float()
        ((r - x).abs().mean() + (r - x).pow(2).mean() + 1e-6 * d.kl().mean()).backward()
        opt.step(); opt.zero_grad(set_to_none=True)
    return step

if __name__ == "__main__":
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("what", nargs="?", default="all", choices=["unet", "vae", "all"]); a.add_argument("--compile", action="store_true")
    a = a.parse_args()
    torch.set_num_threads(2); quiet_libraries()
    print(f"torch {torch.__version__}, CPU kernels {torch.backends.cpu.get_cpu_capability()}", flush=True)
    if a.what in ("unet", "all"):
        variants = ["one_call", "two_calls", "channels_last", "attn_processor", "bf16", "one_head"] + (["compile"] if a.compile else [])
        for v in variants + variants[:2]:                  # the first two again: the machine's drift
            t0 = time.perf_counter(); s = unet_step(v); first = None
            if v == "compile": s(); first = time.perf_counter() - t0
            print(f"UNet batch 64, {v}: {seconds_per(s):.3f} s/step" + (f" (compiling {first:.0f} s)" if first else ""), flush=True)
    if a.what in ("vae", "all"):
        for att in (True, False):
            for b in (64, 32): print(f"VAE batch {b}, attention {att}: {seconds_per(vae_step(att, b), 3, 10):.3f} s/step", flush=True)
        for bf in (False, True, False):                    # fp32 again: the machine's drift
            print(f"VAE batch 64, attention True, bfloat16 {bf}: {seconds_per(vae_step(True, 64, bf), 3, 10):.3f} s/step", flush=True)
