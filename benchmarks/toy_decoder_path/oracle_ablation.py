"""What must a token carry for the frozen toy decoder to place its object? Reconstructions of held-out scenes from
their own layout tokens (a model pretrained with `pretrain(layout_fraction=...)`), with parts of the layout features
taken away or corrupted, scored by PSNR and placement (`glass.toy.demo.placement`):

  python benchmarks/toy_decoder_path/oracle_ablation.py MODEL [--n 64] [--steps 20] [--run RUN ...]

With `--run`, also the oracle tokens with each object's centre taken from the trained run's slot whose argmax region
overlaps the object best: what the decoder makes of the centres the slots find, through its own token map.

Writes results/oracle_ablation_<model folder name>.json. Layout features (`glass.toy.model.scene_layouts`): class
one-hot 0:3, mean colour 3:6, size 6, Fourier code of the centre 7:23, background flag 23, background gradient 24:30."""
import argparse, json
from pathlib import Path
import numpy as np, torch
from glass.decoder import SlotDecoder
from glass.metrics import contingency, iou_from_contingency
from glass.toy.demo import placement, psnr
from glass.toy.model import fourier_features, load_layout_tokens, load_toy_pipeline, scene_layouts
from glass.toy.world import render_split

POSITION, COLOUR, SIZE = slice(7, 23), slice(3, 6), slice(6, 7)
RESULTS = Path(__file__).parent/"results"

def centre_code(centres: np.ndarray) -> np.ndarray:
    "Fourier code (..., 16) of object centres (..., 2) in [0, 1], x then y, as `scene_layouts` writes it."
    return np.concatenate([fourier_features(centres[..., 0]), fourier_features(centres[..., 1])], -1).astype(np.float32)

def best_slots(regions: np.ndarray, instance: np.ndarray, objects: int = 3) -> np.ndarray:
    """For each of the first `objects` objects of instance maps (n,H,W), the label (1..S) of the region of slot label
    maps `regions` (n,H,W) whose IoU with it is highest (`glass.metrics`' slot-object IoU, as mBO takes its best);
    0 where the object is absent: (n, objects)."""
    best = np.zeros((len(instance), objects), np.int64)
    for i, (reg, inst) in enumerate(zip(regions, instance)):
        n, vals = contingency(reg, int(reg.max()) + 1, inst)
        iou = iou_from_contingency(n, vals > 0)
        for col, v in enumerate(vals[vals > 0].tolist()):
            if v <= objects: best[i, v - 1] = int(iou[:, col].argmax())
    return best

def object_centres(instance: np.ndarray, regions: np.ndarray | None = None) -> np.ndarray:
    """Centres (n, 3, 2) of the first three objects of instance maps (n,H,W), x then y in (0, 1), NaN where absent;
    with slot label maps `regions` (n,H,W), the centre of each object's best-overlapping region instead."""
    n, H, W = instance.shape
    yy, xx = np.meshgrid((np.arange(H) + 0.5) / H, (np.arange(W) + 0.5) / W, indexing="ij")
    best = None if regions is None else best_slots(regions, instance)
    c = np.full((n, 3, 2), np.nan, np.float32)
    for i in range(n):
        for k in range(3):
            if not (instance[i] == k + 1).any(): continue
            r = instance[i] == k + 1 if regions is None else regions[i] == best[i, k]
            c[i, k] = xx[r].mean(), yy[r].mean()
    return c

def slot_region_centres(run, images: np.ndarray, instance: np.ndarray) -> np.ndarray:
    """For each of the first three objects of instance maps (n,H,W), the centre (x, y) of the argmax region of the
    trained `run`'s slot that overlaps it best (IoU), on the scenes `images`: (n, 3, 2), NaN where absent."""
    from glass.checkpoint import find_checkpoint, load_checkpoint
    from glass.toy.demo import slot_argmax
    with torch.no_grad(): regions = slot_argmax(load_checkpoint(find_checkpoint(run))[1], images)
    return object_centres(instance, regions)

def with_centres(obj: np.ndarray, cls: np.ndarray, centres: np.ndarray) -> np.ndarray:
    "Object features (n,3,30) `obj` with the position code of `centres` (n,3,2) (clipped to [0, 1]) for present objects."
    o = obj.copy(); o[..., POSITION] = np.where((cls >= 0)[..., None], centre_code(np.clip(centres, 0, 1)), 0)
    return o

def variants(obj: np.ndarray, cls: np.ndarray, centres: np.ndarray, rng: np.random.Generator) -> dict:
    "Name -> object features (n,3,30): the oracle, and the oracle with parts removed or corrupted."
    with_code = lambda c: with_centres(obj, cls, c)
    out = {"oracle": obj}
    o = obj.copy(); o[..., POSITION] = 0; out["no position code"] = o
    o = obj.copy(); o[..., COLOUR] = 0; o[..., SIZE] = 0; out["no colour or size"] = o
    for s in (0.05, 0.1, 0.2):
        out[f"centre + noise sd {s}"] = with_code(centres + rng.normal(0, s, centres.shape).astype(np.float32))
    out["another scene's centres"] = with_code(np.roll(np.nan_to_num(centres, nan=0.5), 1, 0))
    o = obj.copy(); keep = [7, 11, 15, 19]                       # sin and cos of pi x, then of pi y
    o[..., [k for k in range(7, 23) if k not in keep]] = 0; out["lowest frequency only (k = 1)"] = o
    return out

@torch.no_grad()
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model"); ap.add_argument("--n", type=int, default=64); ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--run", nargs="*", default=[], help="trained run folders whose slots' regions give the centres")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    val = render_split("val", a.n, 0)
    pipe, dec = load_toy_pipeline(a.model), SlotDecoder(a.model, device="cpu", dtype=torch.float32)
    lay = load_layout_tokens(a.model, pipe.tokenizer)
    obj, cls, bg = scene_layouts(val.images, val.instance, [r["objects"] for r in val.records])
    x = torch.from_numpy(val.images).permute(0, 3, 1, 2).float() / 255
    res, runs, centres = {}, {}, object_centres(val.instance)
    for run in a.run:
        found = slot_region_centres(run, val.images, val.instance)
        print(f"{run}: region centre error sd {np.round((found - centres)[cls >= 0].std(0), 3)}", flush=True)
        runs[f"centres of the best slot regions of {run}"] = with_centres(obj, cls, np.nan_to_num(found, nan=0.5))
    for name, o in {**variants(obj, cls, centres, np.random.default_rng(0)), **runs}.items():
        toks = lay(pipe.text_encoder, *(torch.from_numpy(v) for v in (o, cls, bg)), torch.Generator().manual_seed(0))
        rec = dec.reconstruct(toks, steps=a.steps, seed=0)
        res[name] = {"psnr": round(psnr(rec, x), 2), "placement": round(placement(rec, val.classes), 3)}
        print(f"{name:45s} PSNR {res[name]['psnr']:6.2f}  placement {res[name]['placement']:.3f}", flush=True)
    unc = dec.reconstruct(dec.unconditional(4, a.n).clone(), steps=a.steps, seed=0)
    res["unconditional"] = {"psnr": round(psnr(unc, x), 2), "placement": round(placement(unc, val.classes), 3)}
    print(f"{'unconditional':45s} PSNR {res['unconditional']['psnr']:6.2f}  placement {res['unconditional']['placement']:.3f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS/f"oracle_ablation_{Path(a.model).name}.json"
    out.write_text(json.dumps({"model": str(a.model), "n": a.n, "steps": a.steps, "results": res}, indent=1) + "\n")
    print(out)

if __name__ == "__main__":
    main()
