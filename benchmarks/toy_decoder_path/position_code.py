"""Slots that say where they are: an experiment, not a setting. Each slot's token gets the Fourier code of its
attention centroid, the code the layout tokens of a `pretrain(layout_fraction=...)` model carry for an object's
centre: token_j = Linear([LN(slot_j), phi(mu_x), phi(mu_y)]), mu_j = sum_i m_ij p_i / sum_i m_ij over the slot's
attention mask m_j (differentiable, so the decoder's gradient also reaches the masks through mu); with `--code region`
mu_j is the centre of the slot's argmax region instead (no gradient through it). With `--code update`
the token reads the slot's last update instead, slot attention's own attention-weighted mean of its values (which
hold position), before the GRU: token_j = Linear([LN(slot_j), LN(u_j)]). `GLASS` is patched in this process only;
With `--pos-embedding fourier` slot attention's positional embedding is a linear map of the same Fourier code of each
cell's (x, y) instead of the release's linear map of (x, y, 1-x, 1-y), so that the values, and the update, carry
position in the decoder's form. Then `probe_model.py`'s runs train and are scored as usual.
`python benchmarks/toy_decoder_path/position_code.py MODEL OUT [--runs unguided_real] [--code fourier|region|update] [--pos-embedding linear|fourier] [--set FIELD=VALUE ...]`"""
import argparse, sys
from pathlib import Path
import numpy as np, torch
from torch import nn
import glass.model as gm
from glass.slots import cartesian_grid
sys.path.insert(0, str(Path(__file__).parent))
import probe_model

def fourier(c: torch.Tensor) -> torch.Tensor:
    "Sines then cosines of pi k c, k = 1, 2, 4, 8 (as `glass.toy.model.fourier_features`): (..., 8)."
    a = c[..., None] * torch.tensor([1.0, 2.0, 4.0, 8.0], device=c.device) * np.pi
    return torch.cat([a.sin(), a.cos()], -1)

class PositionedProjection(nn.Module):
    "LayerNorm(slot) and the Fourier code of the slot's mask centroid -> Linear -> the UNet's token width."
    def __init__(self, slot_size: int, out_dim: int):
        super().__init__()
        self.norm, self.linear = nn.LayerNorm(slot_size), nn.Linear(slot_size + 16, out_dim)
    hard = False                               # True: the centre of the slot's argmax region (no gradient through it)
    def forward(self, slots, masks):
        B, S, h, w = masks.shape
        p = cartesian_grid(h, w, masks.device, masks.dtype)[..., :2].reshape(-1, 2)     # (h*w, 2) cell centres
        if self.hard: masks = nn.functional.one_hot(masks.detach().argmax(1), S).permute(0, 3, 1, 2).to(masks.dtype)
        m = masks.flatten(2)
        mx, my = (torch.einsum("bsn,nc->bsc", m, p) / m.sum(-1, keepdim=True).clamp_min(1e-6)).unbind(-1)
        return self.linear(torch.cat([self.norm(slots), fourier(mx), fourier(my)], -1))

class UpdateProjection(nn.Module):
    "LayerNorm(slot) and LayerNorm(its last update) -> Linear -> the UNet's token width."
    def __init__(self, slot_size: int, out_dim: int):
        super().__init__()
        self.norm, self.norm_update = nn.LayerNorm(slot_size), nn.LayerNorm(slot_size)
        self.linear = nn.Linear(2 * slot_size, out_dim)
    def forward(self, slots, update):
        return self.linear(torch.cat([self.norm(slots), self.norm_update(update)], -1))

CODE = "fourier"                               # which projection `_patched_init` builds: "fourier" or "update"
POS_EMBEDDING = "linear"                       # slot attention's positional embedding: "linear" (the release's) or "fourier"

class FourierPositionalEmbedding(nn.Module):
    "Adds `Linear(16, dim)` of the Fourier code of each cell's centre (x, y) to features (B, h, w, dim)."
    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(16, dim)
    def forward(self, x):
        g = cartesian_grid(x.shape[1], x.shape[2], x.device, x.dtype)
        return x + self.proj(torch.cat([fourier(g[..., 0]), fourier(g[..., 1])], -1))

def last_update(sa, features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    "The update of slot attention's last iteration (B,S,slot_size): its attention `masks` (B,S,h,w) over the values."
    v = sa.to_v(sa.prepare_inputs(features))
    weights = masks.flatten(2).transpose(1, 2) + sa.eps
    return torch.einsum("bns,bnd->bsd", weights / weights.sum(1, keepdim=True), v)

_init = gm.GLASS.__init__
def _patched_init(self, cfg, device=None):
    _init(self, cfg, device)
    proj = {"fourier": PositionedProjection, "region": PositionedProjection, "update": UpdateProjection}[CODE]
    self.projection = proj(cfg.slots.slot_size, self.decoder.cross_attention_dim).to(self.device)
    self.projection.hard = CODE == "region"
    if POS_EMBEDDING == "fourier": self.slot_attention.pos = FourierPositionalEmbedding(self.slot_attention.in_dim).to(self.device)

def _encode_slots(self, pixel_values=None, features=None, init_slots=None, keys=None) -> dict:
    if features is None: features = self.features(pixel_values)
    features = features.to(self.device, torch.float32)
    if keys is not None and init_slots is None: init_slots = self.slot_attention.init_slots(features.shape[0], keys=keys)
    slots, masks = self.slot_attention(features, init_slots)
    code = last_update(self.slot_attention, features, masks) if CODE == "update" else masks
    return dict(slots=slots, slots_proj=self.projection(slots, code), masks=masks, features=features)

if __name__ == "__main__":
    gm.GLASS.__init__, gm.GLASS.encode_slots = _patched_init, _encode_slots
    p = argparse.ArgumentParser(); p.add_argument("model"); p.add_argument("out")
    p.add_argument("--runs", default="unguided_real"); p.add_argument("--set", action="append", default=[])
    p.add_argument("--code", choices=["fourier", "region", "update"], default="fourier")
    p.add_argument("--pos-embedding", choices=["linear", "fourier"], default="linear")
    a = p.parse_args()
    CODE, POS_EMBEDDING = a.code, a.pos_embedding
    probe_model.main(a.model, a.out, a.runs.split(","), extra=dict(kv.split("=", 1) for kv in a.set))
