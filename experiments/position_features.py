"""Does a frozen toy encoder whose features carry position, as a ViT's patch tokens do, let instance masks bind slots
to instances? The toy colour encoder gives two objects of one class the same feature at every pixel; DINOv2's patch
tokens also carry where they are. This adds a fixed random Fourier code of each cell's centre, times `--scale`, to
the colour encoder's features, then trains one of the demo's runs on a finished demo's generated data and scores it
on `val` and `repeated` (as `demo_runs.py`):

  python experiments/position_features.py glass /tmp/demo --scale 1 --tag pos1_seed0
  python experiments/position_features.py glass_instances /tmp/demo --scale 1 --set train.seed=1 --tag pos1_seed1

It writes experiments/results/position_features_<run>_<tag>.json."""
import argparse, json
from pathlib import Path
import torch
from glass.io import asset_path
from glass.config import parse_overrides
from glass.core import hold_kernels, KERNELS
from glass.slots import ColourEncoder
from glass.toy.world import render_split
from glass.toy.demo import demo_config, SIZES, RUNS, run_metrics, train_and_evaluate

def position_code(h: int, w: int, dim: int, sigma: float, seed: int = 1) -> torch.Tensor:
    "(h, w, dim) fixed random Fourier features (sines, then cosines) of the cell centres in [0, 1]^2."
    y, x = (torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w
    p = torch.stack(torch.meshgrid(y, x, indexing="ij"), -1)
    phase = p @ (torch.randn(2, dim // 2, generator=torch.Generator().manual_seed(seed)) * sigma)
    return torch.cat([phase.sin(), phase.cos()], -1)

def with_position(scale: float, sigma: float):
    "Make every `ColourEncoder` add `scale` times `position_code` to its features (this process only)."
    plain = ColourEncoder.forward
    def forward(self, pixel_values):
        f = plain(self, pixel_values)
        return f + scale * position_code(f.shape[1], f.shape[2], f.shape[3], sigma).to(f.dtype)
    ColourEncoder.forward = forward

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", choices=list(RUNS)); p.add_argument("demo_out", help="a finished `glass-demo --out` folder")
    p.add_argument("--scale", type=float, default=1.0, help="weight of the position code against the colour features")
    p.add_argument("--sigma", type=float, default=6.0, help="spread of the code's frequencies (radians per image)")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="toy-preset overrides on top of the run's own")
    p.add_argument("--tag", default="seed0", help="suffix of the results file and of the run folder")
    p.add_argument("--kernels", choices=KERNELS, default="portable", help="CPU code paths, as glass-demo's --kernels")
    a = p.parse_args(argv)
    hold_kernels(a.kernels, "position_features")
    torch.set_num_threads(1)
    with_position(a.scale, a.sigma)
    size = SIZES["full"]
    val, rep = render_split("val", size.n_val, 0), render_split("repeated", size.n_repeated, 0)
    cfg = demo_config(asset_path("toy-sd"), size, 0, **{**RUNS[a.run]["set"], **parse_overrides(a.set)})
    out = Path(a.demo_out)/"runs_only"/f"position_{a.run}_{a.tag}"
    m, _, secs = train_and_evaluate(cfg, Path(a.demo_out)/"gen"/RUNS[a.run]["data"], out, val, False, "cpu", rep, probe_steps=0)
    r = {**run_metrics(m), "scale": a.scale, "sigma": a.sigma, "overrides": a.set, "seconds": secs}
    print(a.run, a.tag, json.dumps({k: r[k] for k in ("dinosaur", "repeated")}), flush=True)
    Path(f"experiments/results/position_features_{a.run}_{a.tag}.json").write_text(json.dumps(r, indent=1))

if __name__ == "__main__": main()
