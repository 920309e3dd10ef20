"""Where is the position lost between the features and the slots? For a trained run, on the first `--n` `val` scenes (with 500 scenes, a fit of 65 parameters to 2,000 slots; chance is about 0.03):
the R^2 of a linear fit (least squares with a bias, in sample) of each cell's position (x, y) from the encoder
features, slot attention's inputs (features + its positional embedding, MLP, LayerNorm), keys and values; then, in the
last slot-attention iteration, of each slot's attention centroid from its update (the weighted mean of the values),
from the GRU's output and from the final slot (after the residual MLP); how much of the final slots' variance
the initial noise and the centroid explain; and how far each object's best slot's attention centroid is from the
object's centre:
`python benchmarks/toy_decoder_path/slot_position.py RUN [RUN ...] [--n 500]`."""
import argparse, json, sys
from pathlib import Path
import numpy as np
import torch
import torch.nn.functional as F
from glass.checkpoint import find_checkpoint, load_checkpoint
from glass.slots import cartesian_grid, item_keys
from glass.toy.world import render_split
sys.path.insert(0, str(Path(__file__).parent))
from oracle_ablation import best_slots

def r2(F: torch.Tensor, T: torch.Tensor) -> float:
    "In-sample R^2 of the least-squares fit of targets T (..., k) from features F (..., d) with a bias."
    F, T = F.double(), T.double()                                   # float32 least squares drifts at 128,000 rows
    F = torch.cat([F, torch.ones(*F.shape[:-1], 1, dtype=F.dtype)], -1).flatten(0, -2); T = T.flatten(0, -2)
    W = torch.linalg.lstsq(F, T).solution
    return round(float(1 - (F @ W - T).pow(2).sum() / (T - T.mean(0)).pow(2).sum()), 3)

def centroid_error(masks: torch.Tensor, centroid: torch.Tensor, instance) -> dict:
    """For each object of instance maps (B,H,W), the slot whose argmax region overlaps it best (IoU, at the masks'
    grid; `oracle_ablation.best_slots`): the sd per axis of (that slot's attention centroid - the object's centre),
    the same for the centre of the slot's argmax region, and the objects' mean best IoU."""
    B, S, h, w = masks.shape
    full = torch.as_tensor(instance)
    inst = F.interpolate(full[:, None].float(), size=(h, w), mode="nearest")[:, 0].long().numpy()   # objects at the grid
    regions = masks.argmax(1).numpy() + 1
    best = best_slots(regions, inst, objects=int(inst.max()))
    pos = cartesian_grid(*full.shape[1:], masks.device, torch.float64)[..., :2]            # centres at full resolution
    grid = cartesian_grid(h, w, masks.device, torch.float64)[..., :2]
    err, err_hard, ious = [], [], []
    for b, k in zip(*np.nonzero(best)):
        r, m, centre = regions[b] == best[b, k], inst[b] == k + 1, pos[full[b] == k + 1].mean(0)
        err.append(centroid[b, best[b, k] - 1].double() - centre); err_hard.append(grid[torch.from_numpy(r)].mean(0) - centre)
        ious.append((r & m).sum() / (r | m).sum())
    sd = lambda e: [round(float(x), 3) for x in torch.stack(e).std(0)]
    return {"sd x, y": sd(err), "rms": round(float(torch.stack(err).pow(2).sum(1).mean().sqrt()), 3),
            "sd x, y of the argmax region's centre": sd(err_hard), "objects": len(ious),
            "mean best IoU": round(float(np.mean(ious)), 3)}

@torch.no_grad()
def trace(run, n: int) -> dict:
    "The R^2 of position at each stage of a run's slot attention (its GRU's inputs and outputs read by a hook)."
    _, model = load_checkpoint(find_checkpoint(run))
    sa, val = model.slot_attention, render_split("val", n, 0)
    f = model.features(model.preprocess(torch.from_numpy(val.images).permute(0, 3, 1, 2)).to(model.device)).float()
    B, h, w, _ = f.shape
    inp = sa.prepare_inputs(f); k, v = sa.to_k(inp), sa.to_v(inp)
    pos = cartesian_grid(h, w, f.device, f.dtype)[..., :2].reshape(1, -1, 2).expand(B, -1, -1)
    init = sa.init_slots(B, keys=item_keys(model.cfg.eval.slot_seed, range(B)))
    calls = []                                                     # (update, GRU output) of every iteration
    hook = sa.gru.register_forward_hook(lambda mod, args, out: calls.append((args[0], out)))
    try: slots, masks = sa(f, init)
    finally: hook.remove()
    update, gru = (x.view(B, sa.num_slots, -1) for x in calls[-1])
    weights = masks.flatten(2).transpose(1, 2) + sa.eps                # the last iteration's weights, as in SlotAttention
    centroid = torch.einsum("bns,bnc->bsc", weights / weights.sum(1, keepdim=True), pos)
    return {"centroid error of the best slot per object": centroid_error(masks, centroid, val.instance),
            "cell position from": {"features": r2(f.flatten(1, 2), pos), "inputs": r2(inp, pos), "keys": r2(k, pos),
                                   "values": r2(v, pos)},
            "slot centroid from": {"update": r2(update, centroid), "gru output": r2(gru, centroid), "slot": r2(slots, centroid)},
            "final slot from its initial noise": r2(init, slots), "final slot from its centroid": r2(centroid, slots)}

if __name__ == "__main__":
    p = argparse.ArgumentParser(); p.add_argument("runs", nargs="+"); p.add_argument("--n", type=int, default=500)
    a = p.parse_args()
    for run in a.runs: print(run, json.dumps(trace(run, a.n)), flush=True)
