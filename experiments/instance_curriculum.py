"""Does an instance-heavy start let instance masks bind slots to objects in the demo's training? For the first
`--warm-steps` steps the training stream draws only the generated items whose instance pseudo map splits a class
(more instance segments than class segments), then the usual seeded stream from its start; optionally with the
position code of `position_features.py` added to the colour encoder's features (`--scale`, `--sigma`; 0: none).
Like `demo_runs.py` it retrains one of the demo's runs on a finished demo's generated data and scores it on `val`
and `repeated`:

  python experiments/instance_curriculum.py glass_instances /tmp/demo --warm-steps 30 --tag warm30_seed0
  python experiments/instance_curriculum.py glass_instances /tmp/demo --warm-steps 30 --scale 2 --sigma 3 --tag warm30_pos2_seed0

It writes experiments/results/instance_curriculum_<run>_<tag>.json."""
import sys
from pathlib import Path
import numpy as np
import glass.train
from glass.core import hold_kernels
from glass.shards import list_shards, read_shard, shard_header
from glass.toy.demo import RUNS, SIZES
sys.path.insert(0, str(Path(__file__).parent))
from demo_runs import retrain, run_parser
from instance_binding import splits_a_class
from position_features import with_position

def split_items(data) -> list:
    "Indices of the items in shard folder `data` whose instance map holds more segments than their class map."
    out, start = [], 0
    for path, _ in list_shards(data):
        hdr = shard_header(path)
        if "instances" in hdr["shapes"]:                                 # only the two maps are read, not the images
            maps = read_shard(path, keys=["instances", "masks"])[0]
            out += (start + np.flatnonzero(splits_a_class(maps["instances"].numpy(), maps["masks"].numpy()))).tolist()
        start += len(hdr["items"])
    return out

def with_warm_start(items: list, warm_draws: int):
    "Make the training stream's first `warm_draws` positions draw from `items` only (seeded, this process only)."
    plain = glass.train.stream_indices
    def stream_indices(n, seed, start, count):
        out = []
        for p in range(start, start + count):
            if p < warm_draws: out.append(items[plain(len(items), seed + 1, p, 1)[0]])
            else: out.append(plain(n, seed, p - warm_draws, 1)[0])
        return out
    glass.train.stream_indices = stream_indices

def main(argv=None):
    p = run_parser(__doc__.split("\n\n")[0])
    p.add_argument("--warm-steps", type=int, default=30, help="steps drawn only from items whose instance map splits a class")
    p.add_argument("--scale", type=float, default=0.0, help="weight of the added position code (0: the colour encoder alone)")
    p.add_argument("--sigma", type=float, default=3.0, help="spread of the position code's frequencies")
    a = p.parse_args(argv)
    hold_kernels(a.kernels, "instance_curriculum")
    if a.scale: with_position(a.scale, a.sigma)
    items = split_items(Path(a.demo_out)/"gen"/RUNS[a.run]["data"])
    print(f"{len(items)} items split a class; the first {a.warm_steps} steps draw from them", flush=True)
    with_warm_start(items, a.warm_steps * SIZES["full"].batch_size)
    retrain(a, "instance_curriculum", {"warm_steps": a.warm_steps, "split_items": len(items), "scale": a.scale,
                                       "sigma": a.sigma})

if __name__ == "__main__": main()
