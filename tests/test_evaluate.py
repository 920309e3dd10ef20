"glass.evaluate: glass-eval end to end on a tiny VOC tree with a tiny GLASS; the release import end to end."
import json, os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from glass.testing import assert_metrics_equal

pytestmark = pytest.mark.xdist_group("evaluate")   # its module-scoped fixtures are built once, on one worker

ROOT = Path(__file__).resolve().parents[1]
# grey background, then one colour per object; each object also has its own class, so class masks = instance masks
COLOURS = [(128, 128, 128), (220, 40, 40), (40, 200, 60), (40, 60, 220), (230, 220, 40)]
# (height, width, axis, [(colour index, VOC class, start, stop)], [void (start, stop)]): stripes along `axis`,
# on 4-px cells, so that the 32x32 slot grid and every resize in both protocols are exact (no corners to round)
SCENES = [(128, 128, 1, [(1, 15, 16, 48), (3, 12, 60, 124)], [(12, 16), (48, 52)]),
          (128, 128, 0, [(2, 8, 0, 64), (4, 3, 80, 112)], []),
          (128, 160, 1, [(2, 8, 0, 12), (1, 15, 20, 60), (3, 12, 100, 140)], [])]


def write_stripe_voc(root) -> Path:
    "A VOC 2012 tree (JPEGs + palette PNGs, val split) of the stripe scenes; returns the folder holding VOCdevkit."
    from PIL import Image
    from glass.viz import palette
    base = Path(root) / "VOCdevkit" / "VOC2012"
    for s in ("JPEGImages", "SegmentationClass", "SegmentationObject", "ImageSets/Segmentation"):
        (base / s).mkdir(parents=True, exist_ok=True)
    pal = palette().reshape(-1).tolist()
    ids = []
    for n, (h, w, axis, objs, void) in enumerate(SCENES):
        img = np.zeros((h, w, 3), np.uint8); img[:] = COLOURS[0]
        obj, cls = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
        sl = (lambda a, b: np.s_[:, a:b]) if axis == 1 else (lambda a, b: np.s_[a:b, :])
        for k, (c, label, a, b) in enumerate(objs, 1):
            img[sl(a, b)] = COLOURS[c]; obj[sl(a, b)] = k; cls[sl(a, b)] = label
        for a, b in void: obj[sl(a, b)] = 255; cls[sl(a, b)] = 255
        k = f"2008_{n:06d}"; ids.append(k)
        Image.fromarray(img).save(base / "JPEGImages" / f"{k}.jpg", quality=100, subsampling=0)
        for arr, sub in ((obj, "SegmentationObject"), (cls, "SegmentationClass")):
            im = Image.fromarray(arr, mode="P"); im.putpalette(pal); im.save(base / sub / f"{k}.png")
    (base / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(ids) + "\n")
    return Path(root)


class Pool(torch.nn.Module):
    "A 12-d stand-in for Inception's 2048-d features (its 2048x2048 sqrtm alone takes ~40 s on one CPU thread)."
    def forward(self, x): return F.adaptive_avg_pool2d(x.float(), 2).flatten(1)


def evaluate_here(checkpoint, reader, one_thread=False, overrides=None, **kw):
    "`evaluate` of the checkpoint loaded in this process, as metrics.json stores it (one thread: as the subprocesses run)."
    from glass.checkpoint import load_checkpoint
    from glass.evaluate import evaluate, _jsonable
    n = torch.get_num_threads()
    if one_thread: torch.set_num_threads(1)
    try:
        cfg, model = load_checkpoint(checkpoint, device="cpu", overrides=overrides)
        return json.loads(json.dumps(_jsonable(evaluate(model, reader, cfg=cfg, progress=False, **kw))))
    finally: torch.set_num_threads(n)


@pytest.fixture(scope="module")
def stripes(tmp_path_factory):
    return write_stripe_voc(tmp_path_factory.mktemp("stripes"))


@pytest.fixture(scope="module")
def tiny_run(tiny, tmp_path_factory):
    """A tiny GLASS saved as glass-train saves it (steps 2 and 4, with different weights), its config and the model
    (holding step 4's weights)."""
    from glass.model import GLASS
    from glass.testing import tiny_config, write_tiny_run
    torch.manual_seed(0)
    cfg = tiny_config("voc", **{"slots.num_slots": 3, "eval.val_steps": 2, "eval.edit_steps": 2, "eval.fid_steps": 2})
    model = GLASS(cfg, device="cpu")
    run = tmp_path_factory.mktemp("run")
    write_tiny_run(run, cfg, model, steps=(2, 4))
    return run, cfg, model


def test_glass_eval_console_script(tiny_run, stripes, tmp_path):
    "The installed `glass-eval` command, in a fresh process, on the tiny run: metrics.json, table.md, figures."
    run, cfg, model = tiny_run
    exe = Path(sys.executable).parent / "glass-eval"
    cmd = [str(exe), "--checkpoint", str(run), "--data", str(stripes), "--dataset", "voc", "--out", str(tmp_path / "ev"),
           "--figures", "2", "--device", "cpu", "--no-progress"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "ev"
    m = json.loads((out / "metrics.json").read_text())
    assert m["step"] == 4 and m["checkpoint"].endswith("step-0000004") and m["n_images"] == 3
    assert sorted(m["protocols"]) == ["dinosaur", "glass"]
    for p in m["protocols"].values():
        assert all(0.0 <= p[k] <= 1.0 for k in ("mbo_i", "mbo_c", "miou", "corloc", "detrate"))
        assert p["miou"] <= p["mbo_c"] + 1e-9
    # deterministic: the command's numbers are evaluate()'s on the newest checkpoint, loaded here
    from glass.datasets import VOCReader
    assert_metrics_equal(m["protocols"], evaluate_here(run, VOCReader(stripes), one_thread=True)["protocols"])
    older = evaluate_here(run / "checkpoints" / "step-0000002", VOCReader(stripes), one_thread=True)["protocols"]
    assert max(abs(older[p][k] - m["protocols"][p][k]) for p in older for k in ("mbo_i", "ari")) > 1e-4   # step 2 would not pass
    table = (out / "table.md").read_text()
    assert table.count("(paper)") == 5 and table.count("**voc @ step-0000004**") == 2
    assert "| GLASS (paper) | paper | 58.07 | 65.47 | 96.61 | 62.69 | 64.00 |" in table
    assert "| DINOSAUR-MLP (paper) | paper | 39.72 | 41.18 | 57.41 | 28.36 | 41.00 |" in table
    for f in ("segmentation", "reconstruction", "removal"):
        p = out / "figures" / f"{f}.png"
        assert p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG"
    assert "GLASS-release" in r.stdout and "metrics.json" in r.stdout


def test_evaluate_equals_mask_metrics_on_the_same_maps(tiny_run, stripes, monkeypatch):
    "`evaluate`'s numbers are the per-image `mask_metrics` of the model's own slot masks, averaged: recomputed here step by step."
    from glass.datasets import VOCReader, eval_transform
    from glass.evaluate import evaluate, encode
    from glass.metrics import mask_metrics, DISCOVERY_KEYS
    from glass.slots import resize_masks
    run, cfg, model = tiny_run
    reader = VOCReader(stripes)
    init = model.slot_attention.init_slots(8, torch.Generator().manual_seed(0))     # the same slot noise on both paths
    encode_slots = model.encode_slots
    monkeypatch.setattr(model, "encode_slots", lambda pixel_values, **kw: encode_slots(pixel_values=pixel_values, init_slots=init[:len(pixel_values)], **kw))
    got = evaluate(model, reader, protocol="both", cfg=cfg, batch_size=8, progress=False)
    want = {}
    for p in ("glass", "dinosaur"):                                  # evaluate's order
        ds = [eval_transform(reader[i], p, encoder_resolution=cfg.encoder.resolution) for i in range(len(reader))]
        masks = encode(model, torch.stack([d["pixel_values"] for d in ds]))["masks"]
        per = [mask_metrics(resize_masks(masks[i:i + 1], tuple(d["instance"].shape[-2:]))[0], d["instance"], d["classes"],
                            d["ignore"], p, class_ignore=d["class_ignore"]) for i, d in enumerate(ds)]
        want[p] = {k: float(np.mean([m[k] for m in per if m[k] is not None])) for k in DISCOVERY_KEYS}
    for p in want:
        for k in DISCOVERY_KEYS: assert got["protocols"][p][k] == pytest.approx(want[p][k], abs=1e-9), (p, k)


def test_glass_eval_fid_probe_and_checkpoint_choice(tiny_run, stripes, tmp_path, monkeypatch):
    "In-process main(): a given checkpoint folder, FID (small stand-in features) and the probe go into both reports."
    import glass.metrics
    from glass.evaluate import main
    from glass.checkpoint import load_checkpoint
    monkeypatch.setattr(glass.metrics, "InceptionFeatures", Pool)
    run, cfg, model = tiny_run
    assert main(["--checkpoint", str(run / "checkpoints" / "step-0000002"), "--data", str(stripes), "--dataset", "voc",
              "--out", str(tmp_path / "ev"), "--protocol", "dinosaur", "--fid", "3", "--probe", "--probe-steps", "20",
              "--figures", "0", "--device", "cpu", "--no-progress", "--set", "eval.probe_iou=0.1"]) is None
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["step"] == 2 and list(m["protocols"]) == ["dinosaur"]
    assert m["fid"]["n_images"] == 3 and m["fid"]["steps"] == 2
    # deterministic: protocols, FID and probe are evaluate()'s on step 2 loaded here with the same settings
    from glass.datasets import VOCReader
    want = evaluate_here(run / "checkpoints" / "step-0000002", VOCReader(stripes), overrides={"eval.probe_iou": 0.1},
                         protocol="dinosaur", fid=3, fid_features=Pool(), probe=True, probe_steps=20)
    for k in ("protocols", "fid", "probe"): assert_metrics_equal(m[k], want[k], path=k)
    assert set(m["probe"]["thresholds"]) == {"0.1", "0.7"} and m["probe"]["n_train_images"] == 3
    assert "figures" not in os.listdir(tmp_path / "ev") and set(m["files"]) == {"metrics", "table"}
    table = (tmp_path / "ev" / "table.md").read_text()
    assert "| GLASS (paper) | 63.70 |" in table and "Property prediction" in table
    # the loaded weights are the saved ones (which step folder gives which weights: the evaluation chapter)
    c2, m2 = load_checkpoint(run, device="cpu")
    x = torch.rand(1, 3, 56, 56)
    init = model.slot_attention.init_slots(1, torch.Generator().manual_seed(0))
    torch.testing.assert_close(m2.encode_slots(x, init_slots=init)["slots"], model.encode_slots(x, init_slots=init)["slots"])


def test_glass_eval_errors(tiny_run, stripes, tmp_path, capsys):
    from glass.evaluate import main, build_parser
    run, cfg, model = tiny_run
    for argv, msg in [(["--checkpoint", str(tmp_path / "missing")], "checkpoints/step-XXXXXXX"),
                      (["--checkpoint", str(stripes)], "no model.safetensors"),
                      (["--checkpoint", str(run), "--data", str(tmp_path), "--dataset", "voc"], "VOCdevkit/VOC2012"),
                      (["--checkpoint", str(run), "--set", "slots.num_slot=4"], "slots.num_slots")]:
        with pytest.raises(SystemExit) as e: main(argv)
        assert e.value.code == (2 if "--set" in argv else 1)        # 2: usage; 1: what the command found
        assert msg in capsys.readouterr().err
    # a folder of bare weights without any config.json: the error names --config / --preset; --config makes it work
    import shutil
    bare = tmp_path / "bare" / "step-0000004"
    shutil.copytree(run / "checkpoints" / "step-0000004", bare)
    (bare / "config.json").unlink(); (bare / "state.json").unlink()          # bare weights, no manifest
    with pytest.raises(SystemExit): main(["--checkpoint", str(bare), "--data", str(stripes), "--dataset", "voc"])
    assert "--config FILE or --preset NAME" in capsys.readouterr().err
    main(["--checkpoint", str(bare), "--config", str(run / "config.json"), "--data", str(stripes), "--dataset", "voc",
          "--out", str(tmp_path / "ev"), "--limit", "1", "--figures", "0", "--device", "cpu", "--no-progress"])
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["n_images"] == 1
    helptext = build_parser().format_help()
    for opt in ("--checkpoint", "--data", "--dataset", "--out", "--limit", "--fid", "--probe", "--preset", "--set",
                "--protocol", "--figures", "--device", "--batch-size", "--config", "--probe-steps", "--split", "--num-workers"):
        assert opt in helptext


def test_papermill_notebook(tiny_run, stripes, tmp_path):
    "nbs/91_driver_evaluate.ipynb with papermill: the table and the figures inline, the files on disk."
    import papermill as pm
    run, cfg, model = tiny_run
    out = tmp_path / "ev"
    nb = pm.execute_notebook(str(ROOT / "nbs/91_driver_evaluate.ipynb"), str(tmp_path / "eval.ipynb"), kernel_name="python3",
                             cwd=str(ROOT / "nbs"), progress_bar=False,
                             parameters=dict(checkpoint=str(run), data=str(stripes), dataset="voc", out=str(out),
                                             limit=2, figures=2, device="cpu", progress=False,
                                             overrides="eval.edit_steps=1 eval.val_steps=1"))
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_images"] == 2 and m["step"] == 4
    kinds = [o.get("output_type") for c in nb.cells for o in c.get("outputs", [])]
    pngs = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    mds = [o for c in nb.cells for o in c.get("outputs", []) if "text/markdown" in o.get("data", {})]
    assert "error" not in kinds and len(pngs) == 3
    assert any("GLASS (paper)" in "".join(o["data"]["text/markdown"]) for o in mds)


def test_glass_eval_toy_world(tmp_path):
    "The toy world through glass-eval: a colour-encoder GLASS with the DINOSAUR MLP decoder (no pretrained parts)."
    from safetensors.torch import save_file
    from glass.config import preset, save_config
    from glass.model import GLASS
    from glass.checkpoint import begin_checkpoint, commit_checkpoint
    from glass.evaluate import main
    cfg = preset("toy", **{"decoder.kind": "dinosaur-mlp", "decoder.mlp_hidden": 64, "decoder.mlp_layers": 2})
    model = GLASS(cfg, device="cpu")
    run = tmp_path / "run"
    ck = begin_checkpoint(run, 1)
    save_file({k: v.contiguous() for k, v in model.trainable_state_dict().items()}, str(ck / "model.safetensors"))
    save_config(cfg, ck / "config.json"); commit_checkpoint(ck, {"step": 1}); save_config(cfg, run / "config.json")
    main(["--checkpoint", str(run), "--dataset", "toy", "--out", str(tmp_path / "ev"),          # no --data: rendered from the seed
          "--limit", "16", "--device", "cpu", "--no-progress", "--probe", "--probe-steps", "20"])
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["dataset"] == "toy" and m["n_images"] == 16 and m["probe"] is not None
    from glass.evaluate import open_dataset
    want = evaluate_here(run, open_dataset("toy", None, cfg.eval.split, cfg), limit=16, mask_size=0, probe=True, probe_steps=20)
    for k in ("protocols", "probe"): assert_metrics_equal(m[k], want[k], path=k)
    assert m["protocols"]["dinosaur"]["n_scored"] == 16                 # every toy scene has 1-3 objects
    assert set(m["files"]) == {"metrics", "table", "segmentation"}      # no diffusion decoder: no reconstructions
    assert "(paper)" not in (tmp_path / "ev" / "table.md").read_text()


def _release_folder(folder, cfg, in_dim, out_dim, weights="diffusion_pytorch_model.safetensors", drop=()):
    "A folder in the release's diffusers layout: config.json and tensors named and shaped as the authors' slot attention."
    from safetensors.torch import save_file
    from glass.checkpoint import release_shapes
    g = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(s, generator=g) * 0.1
          for k, s in release_shapes(in_dim, cfg.slots.slot_size, cfg.slots.mlp_hidden, out_dim).items() if k not in drop}
    sd["pos.pe"] = torch.rand(1, 4, 32, 32)                           # the release's precomputed grid: dropped on import
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"_class_name": "SlotAttention", "num_slots": 7}))
    if weights.endswith(".bin"): torch.save(sd, folder / weights)
    else: save_file(sd, str(folder / weights))
    return sd


def test_import_release_then_evaluate(tiny, stripes, tmp_path):
    "glass-import-release (python -m glass.checkpoint) writes a run that glass-eval evaluates as it is."
    from safetensors.torch import load_file
    from glass.config import preset, flatten_config
    from glass.model import GLASS
    from glass.testing import tiny_config
    cfg = tiny_config("coco-release")
    model = GLASS(cfg, device="cpu")
    in_dim, out_dim = model.slot_attention.in_dim, model.projection[1].out_features
    sd = _release_folder(tmp_path / "release", cfg, in_dim, out_dim)
    full = flatten_config(preset("coco-release"))
    sets = [f"{k}={v}" for k, v in flatten_config(cfg).items() if full[k] != v]     # the tiny models, CPU-sized slots
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "glass.checkpoint", str(tmp_path / "release"), "--out", str(run), "--set", *sets],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0 and f"glass-eval --checkpoint {run}" in r.stdout, r.stderr[-3000:]
    w = load_file(str(run / "checkpoints" / "step-0000000" / "model.safetensors"))
    assert set(w) == set(model.trainable_state_dict())
    torch.testing.assert_close(w["slot_attention.pos.proj.weight"], sd["pos.projection.weight"].reshape(in_dim, 4)[:, [1, 0, 3, 2]])
    torch.testing.assert_close(w["slot_attention.input_mlp.0.weight"], sd["in_layer_norm.weight"])
    torch.testing.assert_close(w["projection.1.weight"], sd["out_linear.weight"])
    r = subprocess.run([sys.executable, "-m", "glass.evaluate", "--checkpoint", str(run), "--data", str(stripes), "--dataset",
                        "voc", "--out", str(tmp_path / "ev"), "--figures", "0", "--device", "cpu", "--no-progress"],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert (m["step"], m["config"], m["num_slots"], m["n_images"]) == (0, "coco-release", 7, 3)
    from glass.datasets import VOCReader
    assert_metrics_equal(m["protocols"], evaluate_here(run, VOCReader(stripes), one_thread=True)["protocols"])


def test_import_release_bin_and_errors(tiny, tmp_path):
    "A .bin release is read weights-only; bad input is one line and exit status 1; a usage error is 2."
    from glass.checkpoint import main
    from glass.config import preset
    cfg = preset("coco-release")
    _release_folder(tmp_path / "bin", cfg, 768, 1024, weights="diffusion_pytorch_model.bin")
    assert main([str(tmp_path / "bin"), "--out", str(tmp_path / "run")]) is None
    assert (tmp_path / "run" / "config.json").exists()
    _release_folder(tmp_path / "broken", cfg, 768, 1024, drop=("gru.bias_hh",))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    for args, msg in [([str(tmp_path / "broken"), "--out", str(tmp_path / "r2")], "gru.bias_hh"),
                      ([str(tmp_path / "missing"), "--out", str(tmp_path / "r3")], "is not a folder"),
                      ([str(tmp_path / "bin"), "--out", str(tmp_path / "run")], "already holds checkpoints"),
                      ([str(tmp_path / "bin"), "--out", str(tmp_path / "r4"), "--set", "slots.slot_size=32"], "slots.slot_size=32")]:
        r = subprocess.run([sys.executable, "-m", "glass.checkpoint", *args], capture_output=True, text=True, env=env, cwd=ROOT)
        assert r.returncode == 1, (args, r.stderr)
        assert r.stderr.startswith("glass-import-release: error: ") and r.stderr.count("\n") == 1 and msg in r.stderr, r.stderr
    r = subprocess.run([sys.executable, "-m", "glass.checkpoint"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 2 and "--out" in r.stderr
