"""The demo's decoder-path numbers (`glass.toy.demo.decoder_path`) of one finished run folder, e.g.
`python benchmarks/toy_decoder_path/run_decoder_path.py /tmp/demo/runs/unguided`."""
import argparse, json
import torch
from glass.evaluate import load_checkpoint
from glass.toy.world import render_split
from glass.toy.demo import SIZES, decoder_path
ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("run", help="a finished run folder (config.json and checkpoints)")
args = ap.parse_args()
torch.set_num_threads(1)
size = SIZES["full"]
val = render_split("val", size.n_val, 0)
_, model = load_checkpoint(args.run, device="cpu")
rec, _ = decoder_path(model, val.images, size.n_recon, size.recon_steps, 0, classes=val.classes)
print(json.dumps(rec, indent=1))
