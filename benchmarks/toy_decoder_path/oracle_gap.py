"""Decoder capacity with oracle conditioning: diffusion loss with the scene's own layout tokens vs another scene's vs
unconditional, and reconstructions from layout tokens (a model pretrained with `pretrain(layout_fraction=...)`):
`python benchmarks/toy_decoder_path/oracle_gap.py MODEL [N]`; writes MODEL/oracle_reconstructions.png.
Placement: object mIoU of the colour oracle of the reconstructions against the scenes' class maps."""
import argparse, json
from pathlib import Path
import numpy as np, torch
from glass.toy.demo import diffusion_losses, conditioning_gap as gap, psnr
from glass.toy.world import render_split
from glass.toy.demo import placement
from glass.toy.model import load_toy_pipeline, load_layout_tokens, scene_layouts
from glass.decoder import SlotDecoder
torch.set_num_threads(1)
ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("model", help="a toy model folder trained with layout tokens")
ap.add_argument("n", type=int, nargs="?", default=64, help="held-out scenes")
args = ap.parse_args()
model, n = args.model, args.n
val = render_split("val", n, 0)
pipe = load_toy_pipeline(model)
dec = SlotDecoder(model, device="cpu", dtype=torch.float32)
lay = load_layout_tokens(model, pipe.tokenizer)
o, c, b = (torch.from_numpy(a) for a in scene_layouts(val.images, val.instance, [r["objects"] for r in val.records]))
with torch.no_grad(): toks = lay(pipe.text_encoder, o, c, b, torch.Generator().manual_seed(0))
x = torch.from_numpy(val.images).permute(0, 3, 1, 2)
lat = dec.encode(x)
L = diffusion_losses(dec, lat, {"own": toks, "shuffled": toks.roll(1, 0), "unconditional": dec.unconditional(4, n)})
rec = dec.reconstruct(toks, steps=20, seed=0)
unc = dec.reconstruct(dec.unconditional(4, n).clone(), steps=20, seed=0)
res = {"losses": L, "gap_shuffled": gap(L), "gap_uncond": gap(L, "unconditional"),
       "psnr_layout": psnr(rec, x.float() / 255), "psnr_uncond": psnr(unc, x.float() / 255)}
res["placement_layout"], res["placement_uncond"] = placement(rec, val.classes), placement(unc, val.classes)
print(json.dumps(res, indent=1))
import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
fig, ax = plt.subplots(3, 8, figsize=(9, 3.5))
for j in range(8):
    for r, im in enumerate([val.images[j], rec[j].permute(1, 2, 0).numpy(), unc[j].permute(1, 2, 0).numpy()]):
        ax[r, j].imshow(im); ax[r, j].axis("off")
fig.tight_layout(); fig.savefig(Path(model)/"oracle_reconstructions.png", dpi=80)
