"""Do a trained run's slots hold what the frozen decoder needs, and only its projection lag behind? Loads a finished
run (a `glass.train` folder), freezes everything but the slot projection, trains the projection alone on the
diffusion loss (Eq. 2, no guidance) for STEPS steps on the run's data, and reports the decoder path before and after
(conditioning gap, PSNR, as `glass.toy.demo.decoder_path` computes them on the first 32 held-out `val` scenes).
`python benchmarks/toy_decoder_path/projection_refit.py RUN_DIR DATA_DIR [--steps 120] [--lr 1e-3] [--out FILE]`"""
import argparse, json, time
from pathlib import Path
import torch
from glass.evaluate import load_checkpoint
from glass.datasets import ShardDataset
from glass.train import make_dataset, StreamSampler
from glass.toy.world import render_split
from glass.toy.demo import SIZES, decoder_path

def summary(rec: dict) -> dict:
    "The decoder-path figures worth printing."
    return {k: round(float(rec[k]), 4) for k in ("conditioning_gap", "unconditional_gap", "psnr")}

def refit_projection(model, data, steps: int, lr: float, batch_size: int = 32, seed: int = 0) -> list:
    "Train only `model.projection` on the diffusion loss for `steps` steps; returns the losses."
    for p in model.parameters(): p.requires_grad_(False)
    params = list(model.projection.parameters())
    for p in params: p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr)
    ds = make_dataset(model.cfg, data)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, collate_fn=ShardDataset.collate,
                                         sampler=StreamSampler(len(ds), seed, start=0, batch_size=batch_size))
    torch.manual_seed(seed)
    losses, it = [], iter(loader)
    for _ in range(steps):
        batch = next(it)
        enc = model.encode_slots(pixel_values=batch["pixel_values"])
        loss = model.reconstruction_loss(batch, enc)
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item())
    return losses

if __name__ == "__main__":
    p = argparse.ArgumentParser(); p.add_argument("run"); p.add_argument("data")
    p.add_argument("--steps", type=int, default=120); p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--out")
    a = p.parse_args()
    torch.set_num_threads(1)
    size = SIZES["full"]
    val = render_split("val", size.n_val, 0)
    _, model = load_checkpoint(a.run, device="cpu")
    model.eval()
    before, _ = decoder_path(model, val.images, size.n_recon, size.recon_steps, 0)
    t0 = time.perf_counter()
    losses = refit_projection(model, a.data, a.steps, a.lr)
    after, _ = decoder_path(model, val.images, size.n_recon, size.recon_steps, 0)
    res = {"run": a.run, "steps": a.steps, "lr": a.lr, "before": summary(before), "after": summary(after),
           "loss_first_last_10": [sum(losses[:10]) / 10, sum(losses[-10:]) / 10], "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(res, indent=1))
    if a.out: Path(a.out).write_text(json.dumps(res, indent=1))
