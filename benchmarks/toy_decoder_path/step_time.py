"""Seconds per UNet step of the toy pretraining with and without layout tokens, measured alternately in one process
(full batch and model, a small corpus, one thread): `python benchmarks/toy_decoder_path/step_time.py [STEPS] [ROUNDS]`."""
import json, sys, tempfile
from pathlib import Path
import numpy as np, torch
from glass.toy.model import pretrain, quiet_libraries

if __name__ == "__main__":
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    torch.set_num_threads(1); quiet_libraries()
    per = {0.0: [], 0.25: []}
    with tempfile.TemporaryDirectory() as d:
        for r in range(rounds):
            for f in per:
                log = pretrain(Path(d)/f"m{r}{f}", steps=steps, n_scenes=512, vae_steps=1, noise_shift=3.0, layout_fraction=f,
                               progress=False, checkpoint_every=0)
                s = [x["seconds"] for x in log["rows"]]
                per[f].append((s[-1] - s[1]) / (len(s) - 2))         # the first step (warm-up of kernels) left out
                print(f, round(per[f][-1], 3), flush=True)
    print(json.dumps({str(f): {"mean_s_per_step": float(np.mean(v)), "runs": v} for f, v in per.items()}))
