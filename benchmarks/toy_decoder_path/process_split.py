"""Would pretraining run faster as two processes of one thread each (data-parallel halves of the batch) than as one
process of two threads? Times a toy UNet step (the recipe's two calls, `step_variants.unet_step`) and a toy VAE step
at the full batch with two threads, then at half the batch in two one-thread processes at once; the gradient
all-reduce such a split would add is not included.

  python benchmarks/toy_decoder_path/process_split.py"""
import os, subprocess, sys
from pathlib import Path

HERE = Path(__file__).parent
PROBE = ("import sys, torch; sys.path.insert(0, {here!r}); from step_variants import unet_step, vae_step, seconds_per; "
         "torch.set_num_threads({threads}); s = unet_step('two_calls', {batch}) if {what!r} == 'unet' else vae_step(True, {batch}); "
         "print(f'{{seconds_per(s, 2, 10):.3f}}')")

def seconds(what: str, threads: int, batch: int, copies: int) -> list:
    "Seconds per step of `copies` processes run at once, each with `threads` threads at `batch`."
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    code = PROBE.format(here=str(HERE), threads=threads, batch=batch, what=what)
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for _ in range(copies)]
    return [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]

if __name__ == "__main__":
    for what in ("unet", "vae"):
        whole = seconds(what, 2, 64, 1)[0]
        halves = seconds(what, 1, 32, 2)
        print(f"{what}: batch 64 on two threads {whole:.3f} s/step; batch 32 in each of two one-thread processes "
              f"{max(halves):.3f} s/step (the slower); ratio {whole / max(halves):.2f}", flush=True)
