"""Reconstruction and slot-mask figures of finished run folders, as in the demo's report (first N held-out `val`
scenes, seed 0): `python benchmarks/toy_decoder_path/run_figures.py OUT_PREFIX RUN_DIR [RUN_DIR ...] [--n 8]`
writes OUT_PREFIX_reconstructions.png (scene / each run's reconstruction / unconditional) and OUT_PREFIX_slots.png.
`--position-code`: runs trained by `position_code.py` (its patch of `GLASS` is applied before loading; `--code` as
they were trained)."""
import argparse, sys
from pathlib import Path
import torch
from glass.evaluate import load_checkpoint
from glass.toy.world import render_split
from glass.toy.demo import SIZES, RUNS, decoder_path, unconditional_reference, reconstructions_figure, slots_figure

if __name__ == "__main__":
    p = argparse.ArgumentParser(); p.add_argument("prefix"); p.add_argument("runs", nargs="+"); p.add_argument("--n", type=int, default=8)
    p.add_argument("--position-code", action="store_true", help="the runs were trained by position_code.py")
    p.add_argument("--code", choices=["fourier", "region", "update"], default="fourier", help="position_code.py's --code of those runs")
    a = p.parse_args()
    if a.position_code:
        import glass.model as gm
        sys.path.insert(0, str(Path(__file__).parent)); import position_code
        position_code.CODE = a.code
        gm.GLASS.__init__, gm.GLASS.encode_slots = position_code._patched_init, position_code._encode_slots
    torch.set_num_threads(1)
    val = render_split("val", a.n, 0)
    models = {Path(r).name: load_checkpoint(r, device="cpu")[1] for r in a.runs}
    recs = {k: decoder_path(m, val.images, a.n, SIZES["full"].recon_steps, 0)[1] for k, m in models.items()}
    recs["unconditional"] = unconditional_reference(next(iter(models.values())).decoder, val.images, a.n, 4,
                                                    SIZES["full"].recon_steps, 0)[1]
    reconstructions_figure(val, recs, a.n, path=f"{a.prefix}_reconstructions.png")
    slots_figure({k: m for k, m in models.items() if k in RUNS}, val, min(a.n, 6), path=f"{a.prefix}_slots.png")
