"""The toy pretraining with layout tokens (`glass.toy.model.pretrain(layout_fraction=...)`, nbs/96_toy_model.ipynb),
optionally in two calls: up to `--first` steps (the folder is written and copied to `--first-out`), then resumed to
`--steps` from the state file beside OUT.
`python benchmarks/toy_decoder_path/layout_pretrain.py OUT [--share 0.25] [--shift 3] [--steps 600] [--channels 48,96,96] [--batch-size 64] [--threads 1] [--first 300 --first-out DIR]`"""
import argparse, shutil
import torch
from glass.toy.model import pretrain, quiet_libraries

if __name__ == "__main__":
    p = argparse.ArgumentParser(); p.add_argument("out"); p.add_argument("--share", type=float, default=0.25)
    p.add_argument("--shift", type=float, default=3.0); p.add_argument("--steps", type=int, default=600)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=64, help="items per step, of the VAE and of the UNet")
    p.add_argument("--threads", type=int, default=1, help="torch threads (glass-demo --retrain uses all cores)")
    p.add_argument("--channels", default="48,96", help="UNet channels per level, e.g. 48,96,96 for three levels")
    p.add_argument("--first", type=int); p.add_argument("--first-out")
    a = p.parse_args()
    torch.set_num_threads(a.threads); quiet_libraries()
    kw = dict(steps=a.steps, layout_fraction=a.share, noise_shift=a.shift, lr=a.lr, batch_size=a.batch_size, threads=a.threads,
              channels=tuple(int(c) for c in a.channels.split(",")), progress=False, checkpoint_every=50)
    if a.first:
        log = pretrain(a.out, max_steps=a.first, **kw)
        print("first part done", log["steps_done"], log["total_seconds"], log["final_loss_mean_last_50"], flush=True)
        if a.first_out: shutil.copytree(a.out, a.first_out, dirs_exist_ok=True)
    log = pretrain(a.out, **kw)
    print("done", log["steps_done"], log["total_seconds"], log["unet_seconds"], log["final_loss_mean_last_50"], flush=True)
