"""The demo's decoder-path numbers (`glass.toy.demo.decoder_path`) of one finished run folder, e.g.
`python benchmarks/toy_decoder_path/run_decoder_path.py /tmp/demo/runs/unguided`."""
import json, sys
import torch
from glass.evaluate import load_checkpoint
from glass.toy.world import render_split
from glass.toy.demo import SIZES, decoder_path
torch.set_num_threads(1)
size = SIZES["full"]
val = render_split("val", size.n_val, 0)
_, model = load_checkpoint(sys.argv[1], device="cpu")
rec, _ = decoder_path(model, val.images, size.n_recon, size.recon_steps, 0)
print(json.dumps(rec, indent=1))
