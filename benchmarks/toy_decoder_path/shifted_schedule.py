"""A noisier toy noise schedule: the cosine schedule with its log-SNR shifted down by 2 log(shift) (simple diffusion's
shifted schedule), given to diffusers as `trained_betas`; pretrain the toy model with it: `glass.toy.model.pretrain(noise_shift=s)`, with
`--layout-share` also `layout_fraction` (layout tokens). (`shifted_cosine_betas`
here is the first version; glass.toy.model's gives identical float32 betas.)
`python benchmarks/toy_decoder_path/shifted_schedule.py OUT --shift 2 [--layout-share 0.25]`"""
import argparse, math, sys
from pathlib import Path
import numpy as np, torch
import glass.toy.model as tm

def shifted_cosine_betas(shift: float = 1.0, n: int = 1000, max_beta: float = 0.999) -> list:
    "Betas of the cosine schedule (diffusers' squaredcos_cap_v2) with log-SNR shifted by -2 log(shift)."
    f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
    t = np.arange(n + 1) / n
    ab = np.array([f(x) for x in t]) / f(0)
    ab = np.clip(ab, 1e-12, 1)
    logsnr = np.log(ab) - np.log1p(-np.minimum(ab, 1 - 1e-12)) - 2 * math.log(shift)
    ab = 1 / (1 + np.exp(-logsnr))
    ab[0] = 1.0 if shift == 1 else ab[0]
    betas = 1 - ab[1:] / ab[:-1]
    return np.minimum(betas, max_beta).tolist()

def shifted_toy_scheduler(shift: float):
    "A `toy_scheduler(kind)` replacement with the shifted cosine betas."
    from diffusers import DDIMScheduler, DDPMScheduler
    def toy_scheduler(kind: str = "ddim"):
        kw = dict(num_train_timesteps=1000, trained_betas=shifted_cosine_betas(shift), prediction_type="v_prediction",
                  clip_sample=False)
        if kind == "ddpm": return DDPMScheduler(**kw)
        return DDIMScheduler(**kw, set_alpha_to_one=False, steps_offset=1)
    return toy_scheduler

if __name__ == "__main__":
    p = argparse.ArgumentParser(); p.add_argument("out"); p.add_argument("--shift", type=float, default=2.0)
    p.add_argument("--steps", type=int, default=600); p.add_argument("--layout-share", type=float, default=0.0)
    a = p.parse_args()
    torch.set_num_threads(1)
    log = tm.pretrain(a.out, steps=a.steps, progress=False, checkpoint_every=0, noise_shift=a.shift,
                      layout_fraction=a.layout_share)
    print("done", log["total_seconds"], log["final_loss_mean_last_50"], flush=True)
