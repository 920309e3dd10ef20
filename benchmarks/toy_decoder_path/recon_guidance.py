"""Do reconstructions follow the scene at a larger classifier-free guidance scale? For trained runs (a demo's
`runs/<name>` folders): PSNR and placement (`glass.toy.demo.placement`) of the first `--n` `val` scenes sampled from
their slots (DPM-Solver++, `--steps`, seed 0) at each scale, and of unconditional samples of the same seed:
`python benchmarks/toy_decoder_path/recon_guidance.py RUN [RUN ...] [--scales 1,1.3,2,3,5] [--n 64] [--steps 10]`."""
import argparse, json
import torch
from glass.checkpoint import find_checkpoint, load_checkpoint
from glass.slots import item_keys
from glass.toy.demo import psnr, placement
from glass.toy.world import render_split

if __name__ == "__main__":
    p = argparse.ArgumentParser(); p.add_argument("runs", nargs="+"); p.add_argument("--scales", default="1,1.3,2,3,5")
    p.add_argument("--n", type=int, default=64); p.add_argument("--steps", type=int, default=10)
    a = p.parse_args()
    val = render_split("val", 500, 0)
    x = torch.from_numpy(val.images[:a.n]).permute(0, 3, 1, 2)
    score = lambda rec: {"psnr": round(psnr(rec, x.float() / 255), 2), "placement": round(placement(rec, val.classes[:a.n]), 3)}
    for run in a.runs:
        _, model = load_checkpoint(find_checkpoint(run))
        dec = model.decoder
        with torch.no_grad():
            keys = item_keys(model.cfg.eval.slot_seed, range(a.n))
            own = model.encode_slots(pixel_values=model.preprocess(x).to(model.device), keys=keys)["slots_proj"].float()
            res = {g: score(dec.reconstruct(own, steps=a.steps, guidance_scale=float(g), seed=0)) for g in a.scales.split(",")}
            res["unconditional"] = score(dec.reconstruct(dec.unconditional(own.shape[1], a.n), steps=a.steps, seed=0))
        print(run, json.dumps(res), flush=True)
