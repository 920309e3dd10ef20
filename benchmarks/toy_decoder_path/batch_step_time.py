"""Seconds per UNet step of the toy pretraining at several batch sizes, measured alternately in one process (the
shipped recipe, a small corpus, `--threads` torch threads as `glass-demo --retrain` uses):
`python benchmarks/toy_decoder_path/batch_step_time.py [--batches 64,40,32] [--steps 12] [--rounds 2] [--threads 2]`."""
import argparse, json
import numpy as np
from glass.toy.model import quiet_libraries
from step_time import alternate

if __name__ == "__main__":
    p = argparse.ArgumentParser(); p.add_argument("--batches", default="64,40,32"); p.add_argument("--steps", type=int, default=12)
    p.add_argument("--rounds", type=int, default=2); p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    quiet_libraries()
    per = alternate({int(b): dict(batch_size=int(b), threads=a.threads) for b in a.batches.split(",")}, a.steps, a.rounds)
    print(json.dumps({str(b): {"mean_s_per_step": float(np.mean(v)), "runs": v} for b, v in per.items()}))
