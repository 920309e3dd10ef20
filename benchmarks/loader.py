#!/usr/bin/env python
"""Does training's data loading keep up with the training step?

    python benchmarks/loader.py                 # tiny test shards and toy shards, this CPU, 1 torch thread

For each data set the loader is built as `glass.train.train` builds it (`glass.train.make_dataset` ->
`glass.datasets.ShardDataset`, `torch.utils.data.DataLoader` with the dataset's collate, the seeded `StreamSampler` and
`num_workers`) and timed alone: milliseconds per batch over `--batches` batches after `--warmup` (worker start-up is
excluded). Then the training step of the matching model (`GLASS.training_step` + backward + clip + AdamW, as
`benchmarks/train_step.py` times it) is timed on batches from that loader. Data sets:

  * `tiny`: random shards from `glass.testing.write_test_shards` at the tiny models' shapes (128 px images, 16x16 latents;
    the loader computes DINOv2 pixel values at 56 px on the fly), model `glass.testing.tiny_config`, batch 8;
  * `toy`: real toy-world scenes written as shards by `glass.demo.write_real_shards` (32 px), model of the `toy`
    preset (CNN encoder, the shipped toy Stable Diffusion), batch 32;
  * `sd21-256`: random shards at the paper's training shapes (256 px, 32x32 latents), the `coco` preset's loader
    (DINOv2 input resized to 448 px on the fly, masks at 256), batch 32; its step is not run here: the row compares
    with the H100 step measured by `benchmarks/train_step.py` (bf16, features not cached), read from its JSON.

The loader keeps up when its time per batch divided by the workers is below the step time (with `num_workers=0` it
runs in the training process, before each step, so its time adds to the step). Wall times on a shared machine move
with its load; CPU times (this process, 1 thread; worker processes not included) are printed beside them.
Prints a table and writes JSON.
Not a test: nothing here asserts a time.
"""
from __future__ import annotations
import argparse, json, os, platform, statistics, tempfile, time
from pathlib import Path

import torch

HERE = Path(__file__).parent


def make_loader(cfg, dataset, num_workers: int):
    "The training DataLoader exactly as `glass.train.train` builds it (from position 0, one process)."
    from glass.train import StreamSampler, _collate
    t = cfg.train
    return torch.utils.data.DataLoader(
        dataset, batch_size=t.batch_size, collate_fn=_collate(dataset), num_workers=num_workers, pin_memory=False,
        sampler=StreamSampler(len(dataset), t.seed, start=0, batch_size=t.batch_size),
        generator=torch.Generator().manual_seed(t.seed * 7919))


def time_loader(loader, batches: int, warmup: int) -> tuple:
    "Wall seconds per batch of `batches` batches after `warmup` (worker start-up in the warm-up), and this process's CPU seconds per batch."
    it, out = iter(loader), []
    for _ in range(warmup): next(it)
    c = time.process_time()
    for _ in range(batches):
        t = time.perf_counter(); next(it); out.append(time.perf_counter() - t)
    cpu = (time.process_time() - c) / batches
    del it
    return out, cpu


def time_steps(cfg, loader, steps: int, warmup: int) -> tuple:
    "Wall and CPU seconds per training step (forward, backward, clip, AdamW) on batches fetched beforehand from `loader`."
    from glass.core import seed_everything
    from glass.model import GLASS
    from glass.train import make_optimizer, to_device
    seed_everything(0)
    model = GLASS(cfg, device="cpu").train()
    params = model.trainable_parameters()
    opt = make_optimizer(params, cfg.train, "cpu")
    it = iter(loader)
    batches = [to_device(next(it), "cpu") for _ in range(warmup + steps)]
    out, cpu = [], []
    for i, b in enumerate(batches):
        t, c = time.perf_counter(), time.process_time()
        model.training_step(b)["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.train.grad_clip)
        opt.step(); opt.zero_grad(set_to_none=True)
        if i >= warmup: out.append(time.perf_counter() - t); cpu.append(time.process_time() - c)
    return out, cpu


def tiny_data(root: Path):
    from glass.testing import write_test_shards
    from glass.testing import tiny_config
    cfg = tiny_config("coco", **{"train.batch_size": 8})
    return cfg, write_test_shards(root/"tiny", n_items=96, per_shard=32, resolution=128, latent=(4, 16, 16))


def toy_data(root: Path):
    from glass import toy
    from glass.demo import demo_config, SIZES, write_real_shards
    cfg = demo_config(toy.toy_model_path(), SIZES["full"])
    pipe = toy.load_toy_pipeline()
    return cfg, write_real_shards(toy.render_split("train", 192), pipe.vae, root/"toy", progress=False)


def sd21_data(root: Path):
    "Random shards at the paper's training shapes (256 px images and masks, 32x32 latents) read by the `coco` preset (DINOv2 input at 448 px)."
    from glass.config import preset
    from glass.testing import write_test_shards
    cfg = preset("coco", **{"train.cache_features": False})
    return cfg, write_test_shards(root/"sd21", n_items=256, per_shard=64, resolution=256, latent=(4, 32, 32))


def h100_step(path: Path = HERE/"results"/"train_step-sd21-256-cuda.json") -> dict:
    "The measured H100 training step without cached features (bf16): the step the uncached loader must feed."
    d = json.loads(path.read_text())
    r = next(r for r in d["rows"] if r["variant"] == "bf16")
    return {"step_s": r["step_s"], "source": f"{d['device_name']}, {d['date']}, {r['variant']} (results/{path.name})"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", default="0,2", help="num_workers values to time (comma-separated; default 0,2)")
    p.add_argument("--data", default="tiny,toy,sd21-256", help="data sets to time (comma-separated)")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(HERE/"results"/"loader-cpu.json"))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads); os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from glass.train import make_dataset
    rows = []
    with tempfile.TemporaryDirectory() as d:
        builders = {"tiny": tiny_data, "toy": toy_data, "sd21-256": sd21_data}
        for name, build in ((k, builders[k]) for k in a.data.split(",")):
            cfg, folder = build(Path(d))
            ds = make_dataset(cfg, str(folder))
            if name == "sd21-256":                  # no such model on a CPU: the step measured on the H100
                ref = h100_step(); step, step_cpu = ref["step_s"], float("nan")
            else:
                walls, cpus = time_steps(cfg, make_loader(cfg, ds, 0), a.steps, a.warmup)
                step, step_cpu = statistics.median(walls), statistics.median(cpus)
            for w in (int(x) for x in a.workers.split(",")):
                per, cpu = time_loader(make_loader(cfg, ds, w), a.batches, a.warmup)
                load = statistics.median(per)
                rows.append({"data": name, "items": len(ds), "batch": cfg.train.batch_size, "num_workers": w,
                             "loader_ms_per_batch": load * 1e3, "loader_ms_max": max(per) * 1e3, "step_ms": step * 1e3,
                             "loader_cpu_ms_per_batch": cpu * 1e3 if w == 0 else None, "step_cpu_ms": step_cpu * 1e3,
                             "loader_over_step": load / step, "keeps_up": load <= step * max(w, 1),
                             "step_source": ref["source"] if name == "sd21-256" else "measured here"})
                r = rows[-1]
                print(f"{name:8s} batch {r['batch']:3d} workers {w}: loader {r['loader_ms_per_batch']:8.1f} ms/batch "
                      f"(max {r['loader_ms_max']:.1f}), step {r['step_ms']:8.1f} ms, loader/step {r['loader_over_step']:.3f}; CPU time: "
                      f"loader {r['loader_cpu_ms_per_batch'] or float('nan'):.1f} ms/batch, step {r['step_cpu_ms']:.1f} ms", flush=True)
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} "
                               f"CPU cores (shared), torch {torch.__version__}, {torch.get_num_threads()} thread(s)",
                               "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
