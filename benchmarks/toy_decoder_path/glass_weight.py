"""The demo's `glass` run on a finished demo's generated GLASS data with another guidance weight (lambda of Eq. 4):
`python benchmarks/toy_decoder_path/glass_weight.py DEMO_OUT WEIGHT` (the model is the demo's, from its settings)."""
import argparse, json
from pathlib import Path
import torch
from glass.toy.world import render_split
from glass.toy.demo import SIZES, demo_config, train_and_evaluate, run_metrics, decoder_path
torch.set_num_threads(1)
ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("demo", type=Path, help="a finished glass-demo --out folder")
ap.add_argument("weight", type=float, help="the guidance weight lambda")
args = ap.parse_args()
demo, w = args.demo, args.weight
size = SIZES["full"]
model = json.loads((demo/"demo_settings.json").read_text())["model"]
val = render_split("val", size.n_val, 0)
m, mod, secs = train_and_evaluate(demo_config(model, size, 0, **{"guidance.weight": w}), demo/"gen"/"glass",
                                  demo/f"runs_weight/glass_{w:g}", val, False, "cpu")
rec, _ = decoder_path(mod, val.images, size.n_recon, size.recon_steps, 0)
res = {"model": model, "guidance_weight": w, "mbo_i": run_metrics(m)["dinosaur"]["mbo_i"],
       "mbo_i_release": run_metrics(m)["glass"]["mbo_i"], **{k: rec[k] for k in ("conditioning_gap", "unconditional_gap", "psnr")},
       "seconds": secs}
print(json.dumps(res, indent=1))
(demo/f"runs_weight/glass_{w:g}.json").write_text(json.dumps(res, indent=1))
