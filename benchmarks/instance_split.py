#!/usr/bin/env python
"""What instance pseudo masks add to each generated item at Stable Diffusion 2.1's shapes (issue: under 10% of the
item's generation time on a GPU). The splitting (`glass.instances.instance_maps`) runs on the CPU of whatever machine
generates, after the tapped self-attention is read back, so its cost is measured here on this CPU:

    python benchmarks/instance_split.py            # writes results/instance-split-cpu.json

A batch of 8 items at 512 px with the 32x32 self-attention (1024 x 1024 per item): in each, one class is a single
square, one class is two squares apart (two components), one is two squares side by side (one component) whose
caption counts two; the self-attention has a block per square (weight 1 inside, 0.05 across, rows normalised).
Times per item (median of `--runs`) for `components`, `attention` and `auto`, and the cost of one cut
(`split_segment`, two parts) by the share of the grid its segment covers (the eigendecomposition grows with the cube
of the segment's cells), each then as a share of the generation time
per item on a GPU, which is not measured here: counted FLOPs at the H100's measured bf16 training rate
(`results/pipeline-cost.json`, `benchmarks/pipeline_cost.py`), for the paper's recipe (100 steps) and the fast one
(UniPC, 10 steps). Not a test: nothing here asserts a time.
"""
from __future__ import annotations
import argparse, json, platform, statistics, time
from dataclasses import replace
from pathlib import Path
import torch
from glass.core import preset
from glass.instances import instance_maps, split_segment

HERE = Path(__file__).parent
SQUARES = [(1, 40, 40), (2, 40, 300), (2, 300, 300), (3, 300, 40), (3, 300, 168)]   # (class, top, left), 128 px squares


def batch(n: int = 8, side: int = 128, grid: int = 32, px: int = 512, across: float = 0.05):
    "Class maps (n, px, px) uint8 and self-attention (n, grid², grid²) of `SQUARES`, the same for every item."
    labels, owner = torch.zeros(px, px, dtype=torch.uint8), torch.full((px, px), -1)
    for i, (c, top, left) in enumerate(SQUARES):
        labels[top:top + side, left:left + side] = c; owner[top:top + side, left:left + side] = i
    cell = owner[px // grid // 2::px // grid, px // grid // 2::px // grid].reshape(-1)     # each cell's square (-1: none)
    W = torch.where(cell[:, None] == cell[None, :], 1.0, across)
    A = W / W.sum(-1, keepdim=True)
    return labels.expand(n, px, px).clone(), A.expand(n, grid * grid, grid * grid).clone()


def seconds_per_item(labels, attention, g, method: str, runs: int) -> tuple:
    "Median seconds per item of `instance_maps` with `method` on the batch, and the instances it finds in the first item."
    caps, classes = ["a cat, two dogs and two birds"] * len(labels), [["cat", "dog", "bird"]] * len(labels)
    gi = replace(g, instances=method)
    times = []
    for _ in range(runs):
        t = time.perf_counter(); out = instance_maps(labels, attention, caps, classes, gi); times.append(time.perf_counter() - t)
    return statistics.median(times) / len(labels), int(out[0].unique().numel()) - 1


def timed_cut(mask, affinity) -> float:
    "Seconds of one two-part cut of segment `mask` by `affinity`."
    t = time.perf_counter(); split_segment(mask, affinity, 2)
    return time.perf_counter() - t


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (NumPy keeps its own)")
    p.add_argument("--out", default=str(HERE/"results"/"instance-split-cpu.json"))
    a = p.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    g = preset("coco", **{"generate.min_instance_area": 0.002}).generate
    labels, attention = batch()
    cost = json.loads((HERE/"results"/"pipeline-cost.json").read_text())
    rate, f = cost["assumed_tflops"] * 1e12, cost["flops"]
    def gpu_item_s(evals: int, tapped: int) -> float:
        return (evals * f["unet_eval"] + tapped * f["taps_per_step"] + f["vae_decode"] + f["vae_encode_train"] + f["text_encoder"]) / rate
    gpu = {"paper (100 steps)": gpu_item_s(200, 100), "fast (UniPC, 10 steps)": gpu_item_s(20, 10)}
    rows = {}
    print(f"instance splitting at SD 2.1 shapes (512 px, self-attention 1024 x 1024), {platform.processor() or platform.machine()}, "
          f"torch threads {torch.get_num_threads()}, median of {a.runs}")
    for method in ("components", "attention", "auto"):
        s, n = seconds_per_item(labels, attention, g, method, a.runs)
        rows[method] = {"s_per_item": s, "instances": n, "share_of_gpu_item": {k: s / v for k, v in gpu.items()}}
        print(f"{method:10s} {s * 1e3:7.1f} ms/item, {n} instances; " +
              ", ".join(f"{s / v:.1%} of a {k} item ({v:.3f} s, extrapolated)" for k, v in gpu.items()))
    cuts = {}
    A = torch.softmax(3 * torch.randn(1024, 1024, generator=torch.Generator().manual_seed(0)), -1)
    for share in (0.25, 0.5, 1.0):
        m = torch.zeros(512, 512, dtype=torch.bool); m[:, :int(512 * share)] = True
        cuts[share] = statistics.median(timed_cut(m.numpy(), A) for _ in range(a.runs))
        print(f"one cut of a segment over {share:.0%} of the grid: {cuts[share] * 1e3:.1f} ms; " +
              ", ".join(f"{cuts[share] / v:.1%} of a {k} item" for k, v in gpu.items()))
    Path(a.out).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "cpu": platform.processor() or platform.machine(),
                                       "threads": torch.get_num_threads(), "runs": a.runs, "gpu_item_s": gpu,
                                       "gpu_item_source": "extrapolated: counted FLOPs at the H100's bf16 training rate",
                                       "methods": rows, "cut_s_by_grid_share": cuts}, indent=1))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
