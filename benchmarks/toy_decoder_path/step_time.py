"""Seconds per UNet step of the toy pretraining with and without layout tokens, measured alternately in one process
(full batch and model, a small corpus, one thread): `python benchmarks/toy_decoder_path/step_time.py [STEPS] [ROUNDS]`."""
import argparse, json, tempfile
from pathlib import Path
import numpy as np, torch
from glass.toy.model import pretrain, quiet_libraries

def seconds_per_step(out, steps: int, **pretrain_kw) -> float:
    "Seconds per UNet step of a short `pretrain` into `out` on a small corpus, the first step (kernel warm-up) left out."
    log = pretrain(out, steps=steps, n_scenes=512, vae_steps=1, progress=False, checkpoint_every=0, **pretrain_kw)
    s = [x["seconds"] for x in log["rows"]]
    return (s[-1] - s[1]) / (len(s) - 2)

def alternate(variants: dict, steps: int, rounds: int) -> dict:
    "Time each of `variants` (name -> pretrain keywords) in turn, `rounds` times: name -> seconds per step of each round."
    per = {k: [] for k in variants}
    with tempfile.TemporaryDirectory() as d:
        for r in range(rounds):
            for k, kw in variants.items():
                per[k].append(seconds_per_step(Path(d)/f"m{r}_{k}", steps, **kw))
                print(k, round(per[k][-1], 3), flush=True)
    return per

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("steps", type=int, nargs="?", default=20); ap.add_argument("rounds", type=int, nargs="?", default=3)
    args = ap.parse_args(); steps, rounds = args.steps, args.rounds
    torch.set_num_threads(1); quiet_libraries()
    per = alternate({f: dict(noise_shift=3.0, layout_fraction=f) for f in (0.0, 0.25)}, steps, rounds)
    print(json.dumps({str(f): {"mean_s_per_step": float(np.mean(v)), "runs": v} for f, v in per.items()}))
