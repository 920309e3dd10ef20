"""Seconds per UNet step of the toy pretraining at several batch sizes, measured alternately in one process (the
shipped recipe, a small corpus, `--threads` torch threads as `glass-demo --retrain` uses):
`python benchmarks/toy_decoder_path/batch_step_time.py [--batches 64,40,32] [--steps 12] [--rounds 2] [--threads 2]`."""
import argparse, json, tempfile
from pathlib import Path
import numpy as np, torch
from glass.toy.model import pretrain, quiet_libraries

if __name__ == "__main__":
    p = argparse.ArgumentParser(); p.add_argument("--batches", default="64,40,32"); p.add_argument("--steps", type=int, default=12)
    p.add_argument("--rounds", type=int, default=2); p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    quiet_libraries()
    per = {int(b): [] for b in a.batches.split(",")}
    with tempfile.TemporaryDirectory() as d:
        for r in range(a.rounds):
            for b in per:
                log = pretrain(Path(d)/f"m{r}_{b}", steps=a.steps, n_scenes=512, vae_steps=1, batch_size=b, threads=a.threads,
                               progress=False, checkpoint_every=0)
                s = [x["seconds"] for x in log["rows"]]
                per[b].append((s[-1] - s[1]) / (len(s) - 2))         # the first step (warm-up of kernels) left out
                print(b, round(per[b][-1], 3), flush=True)
    print(json.dumps({str(b): {"mean_s_per_step": float(np.mean(v)), "runs": v} for b, v in per.items()}))
