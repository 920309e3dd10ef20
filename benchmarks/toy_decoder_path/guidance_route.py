"""Where does guidance act in the toy world? `probe_model.py` with one change to `GLASS.training_step`: the guidance
loss (Eq. 4) is computed on a second slot-attention pass over the encoder's features *detached*, from the same initial
slots, so its gradient reaches slot attention but not the encoder (as with the paper's frozen DINOv2), while the
diffusion loss still trains both. Only meaningful with a trainable encoder (`--set encoder.kind=cnn --set encoder.trainable=true`).
`python benchmarks/toy_decoder_path/guidance_route.py MODEL OUT --runs glass --set encoder.kind=cnn --set encoder.trainable=true`"""
import runpy, sys
from pathlib import Path
import glass.model as gm
from glass.slots import resize_masks
from glass.guidance import match_label_maps, guidance_loss

def training_step(self, batch: dict) -> dict:
    "Eq. 4 with the guidance gradient stopped at the encoder."
    feats = self.features(batch["pixel_values"]).to(self.device)
    init = self.slot_attention.init_slots(feats.shape[0])
    enc = self.encode_slots(features=feats, init_slots=init)
    mse = self.reconstruction_loss(batch, enc)
    _, masks = self.slot_attention(feats.detach(), init)
    labels = batch["masks"].to(self.device)
    masks = resize_masks(masks, labels.shape[-2:])
    g, n = guidance_loss(masks, labels, matches=match_label_maps(masks.detach(), labels))
    return dict(loss=mse + float(self.cfg.guidance.weight) * g, mse=mse.detach(), guidance=g.detach(), n_matched=int(n))

if __name__ == "__main__":
    gm.GLASS.training_step = training_step
    sys.argv = ["probe_model.py"] + sys.argv[1:]
    runpy.run_path(str(Path(__file__).with_name("probe_model.py")), run_name="__main__")
