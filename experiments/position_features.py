"""Does a frozen toy encoder whose features carry position, as a ViT's patch tokens do, let instance masks bind slots
to instances? The toy colour encoder gives two objects of one class the same feature at every pixel; DINOv2's patch
tokens also carry where they are. This adds a fixed random Fourier code of each cell's centre, times `--scale`, to
the colour encoder's features (`--join add`), or appends it as channels of its own (`--join concat`: the colour
channels stay as they are and slot attention's input MLP weighs the two), then trains one of the demo's runs on a finished demo's generated data and scores it
on `val` and `repeated` (as `demo_runs.py`):

  python experiments/position_features.py glass /tmp/demo --scale 1 --tag pos1_seed0
  python experiments/position_features.py glass_instances /tmp/demo --scale 1 --set train.seed=1 --tag pos1_seed1
  python experiments/position_features.py glass_instances /tmp/demo --join concat --channels 16 --tag cat16_seed0

It writes experiments/results/position_features_<run>_<tag>.json."""
import functools, sys
from pathlib import Path
import torch
from glass.core import hold_kernels
from glass.slots import ColourEncoder
sys.path.insert(0, str(Path(__file__).parent))
from demo_runs import retrain, run_parser

@functools.lru_cache(maxsize=8)
def position_code(h: int, w: int, dim: int, sigma: float, seed: int = 1) -> torch.Tensor:
    "(h, w, dim) fixed random Fourier features (sines, then cosines) of the cell centres in [0, 1]^2, made once per shape."
    y, x = (torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w
    p = torch.stack(torch.meshgrid(y, x, indexing="ij"), -1)
    phase = p @ (torch.randn(2, dim // 2, generator=torch.Generator().manual_seed(seed)) * sigma)
    return torch.cat([phase.sin(), phase.cos()], -1)

def with_position(scale: float, sigma: float, join: str = "add", channels: int = 16):
    "Make every `ColourEncoder` add `scale` times `position_code` to its features, or append it as `channels` more (this process only)."
    plain_init, plain = ColourEncoder.__init__, ColourEncoder.forward
    def init(self, *args, **kw):
        plain_init(self, *args, **kw)
        if join == "concat": self.dim += channels
    def forward(self, pixel_values):
        f = plain(self, pixel_values)
        h, w, d = f.shape[1:]
        if join == "add": return f + scale * position_code(h, w, d, sigma).to(f.dtype)
        code = scale * position_code(h, w, channels, sigma).to(f.dtype)
        return torch.cat([f, code.expand(f.shape[0], h, w, channels)], -1)
    ColourEncoder.__init__, ColourEncoder.forward = init, forward

def main(argv=None):
    p = run_parser(__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float, default=1.0, help="weight of the position code against the colour features")
    p.add_argument("--sigma", type=float, default=6.0, help="spread of the code's frequencies (radians per image)")
    p.add_argument("--join", choices=("add", "concat"), default="add", help="add the code to the colour channels, or append it")
    p.add_argument("--channels", type=int, default=16, help="channels of the appended code (`--join concat`)")
    a = p.parse_args(argv)
    hold_kernels(a.kernels, "position_features")
    with_position(a.scale, a.sigma, a.join, a.channels)
    retrain(a, "position_features", {"scale": a.scale, "sigma": a.sigma, "join": a.join,
                                     **({"channels": a.channels} if a.join == "concat" else {})})

if __name__ == "__main__": main()
