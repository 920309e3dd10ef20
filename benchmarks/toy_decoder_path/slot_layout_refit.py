"""Is what the slots lack the content or the map? For a trained run on a layout-token toy model: each `val` scene's
slots are matched (Hungarian, IoU of argmax masks) to its objects and background, and each slot gets as target the
layout token the model was pretrained on for what it covers (the pad token for a slot that covers nothing). A ridge
regression from the slots after the projection's LayerNorm to those tokens, fitted on scenes `--n`..499, is a refit of
the projection's linear map toward the decoder's own token form. The first `--n` scenes are then reconstructed from
(a) their oracle layout tokens, (b) the run's slots through its trained projection, (c) the same slots through the
refit map, and (d) the unconditional embedding; PSNR and placement of each, and the held-out R^2 of the refit:
`python benchmarks/toy_decoder_path/slot_layout_refit.py RUN MODEL [--n 64] [--steps 10] [--ridge 1e-2]`."""
import argparse, json
import numpy as np, torch
from scipy.optimize import linear_sum_assignment
from glass.checkpoint import find_checkpoint, load_checkpoint
from glass.slots import item_keys, resize_masks
from glass.toy.demo import psnr, placement
from glass.toy.model import load_layout_tokens, load_toy_pipeline, scene_layouts, LAYOUT_SLOTS
from glass.toy.world import render_split

def layout_token_table(model_path, val):
    "Per scene: the layout tokens of its objects (n,3,D), of its background (n,D), the pad token (D,), object valid (n,3)."
    pipe = load_toy_pipeline(model_path); te = pipe.text_encoder
    lt = load_layout_tokens(model_path, pipe.tokenizer, te.config.hidden_size)
    obj, cls, bg = (torch.from_numpy(a) for a in scene_layouts(val.images, val.instance, [r["objects"] for r in val.records]))
    emb, ln = te.embeddings.token_embedding, te.final_layer_norm
    with torch.no_grad():
        t_obj = ln(emb(lt.nouns[cls.clamp(min=0)]) + lt.proj(obj))
        t_bg = ln(emb(torch.full((len(bg),), lt.bg_word)) + lt.proj(bg))
        pad = ln(emb(torch.tensor([lt.pad])))[0]
        oracle = lt(te, obj, cls, bg, torch.Generator().manual_seed(0))
    return t_obj, t_bg, pad, cls >= 0, oracle

def slot_targets(masks, instance, t_obj, t_bg, pad, valid):
    """The target token of every slot (n,S,D), by Hungarian matching on the IoU of argmax slot masks with the background
    and the objects, and the centre (x, y) of the object a slot matched (n,S,2; NaN for the background and pads)."""
    n, S = masks.shape[:2]
    H = instance.shape[-1]
    hard = resize_masks(masks, H).argmax(1).numpy()
    out = pad.expand(n, S, -1).clone()
    centre = torch.full((n, S, 2), float("nan"))
    yy, xx = np.meshgrid((np.arange(H) + 0.5) / H, (np.arange(H) + 0.5) / H, indexing="ij")
    for i in range(n):
        segs = [instance[i] == 0] + [instance[i] == k + 1 for k in range(3) if valid[i, k]]
        toks = [t_bg[i]] + [t_obj[i, k] for k in range(3) if valid[i, k]]
        iou = np.array([[(hard[i] == s)[m].sum() / max(((hard[i] == s) | m).sum(), 1) for m in segs] for s in range(S)])
        for s, j in zip(*linear_sum_assignment(-iou)):
            out[i, s] = toks[j]
            if j: centre[i, s] = torch.tensor([xx[segs[j]].mean(), yy[segs[j]].mean()])
    return out, centre

def ridge(x, y, lam):
    "Closed-form ridge regression with a bias: (W, b) minimising |xW + b - y|^2 + lam |W|^2."
    xm, ym = x.mean(0), y.mean(0)
    xc = x - xm
    W = torch.linalg.solve(xc.T @ xc + lam * len(x) * torch.eye(x.shape[1]), xc.T @ (y - ym))
    return W, ym - xm @ W

if __name__ == "__main__":
    p = argparse.ArgumentParser(); p.add_argument("run"); p.add_argument("model"); p.add_argument("--n", type=int, default=64)
    p.add_argument("--steps", type=int, default=10); p.add_argument("--ridge", type=float, default=1e-2)
    a = p.parse_args()
    val = render_split("val", 500, 0)
    t_obj, t_bg, pad, valid, oracle = layout_token_table(a.model, val)
    _, model = load_checkpoint(find_checkpoint(a.run))
    x = torch.from_numpy(val.images).permute(0, 3, 1, 2)
    with torch.no_grad():
        enc = model.encode_slots(pixel_values=model.preprocess(x).to(model.device), keys=item_keys(model.cfg.eval.slot_seed, range(len(x))))
        z = model.projection[0](enc["slots"]).float()                          # the projection's LayerNorm
        target, centre = slot_targets(enc["masks"].float(), val.instance, t_obj, t_bg, pad, valid.numpy())
        tr, te = slice(a.n, None), slice(0, a.n)
        W, b = ridge(z[tr].flatten(0, 1), target[tr].flatten(0, 1), a.ridge)
        pred = z @ W + b
        r2 = lambda p_, t_: float(1 - (p_ - t_).pow(2).sum() / (t_ - t_.mean((0, 1))).pow(2).sum())
        dec, xs = model.decoder, x[te].float() / 255
        conds = {"oracle layout tokens": oracle[te], "slots, trained projection": enc["slots_proj"][te].float(),
                 "slots, refit map": pred[te], "unconditional": dec.unconditional(LAYOUT_SLOTS, a.n)}
        res = {"r2_held_out": r2(pred[te], target[te]), "r2_trained_projection": r2(enc["slots_proj"][te].float(), target[te])}
        obj_tr, obj_te = ~centre[tr].isnan().any(-1), ~centre[te].isnan().any(-1)
        Wc, bc = ridge(z[tr][obj_tr], centre[tr][obj_tr], a.ridge)
        res["r2_object_centre_held_out"] = r2((z[te][obj_te] @ Wc + bc)[:, None], centre[te][obj_te][:, None])
        for k, c in conds.items():
            rec = dec.reconstruct(c, steps=a.steps, seed=0)
            res[k] = {"psnr": round(psnr(rec, xs), 2), "placement": round(placement(rec, val.classes[te]), 3)}
    print(a.run, json.dumps(res), flush=True)
