"""The README's GPU recipe end to end, on a CPU with the tiny models, through the installed console scripts:
glass-caption -> glass-generate -> glass-cache-features -> glass-train -> glass-eval on a tiny VOC tree, and the GLASS†
branch (ground-truth labels -> glass-generate --preset voc-dagger -> glass-train, guidance on matched segments)."""
import json, os, re, shutil, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
from glass.core import read_shard
from glass.datasets import VOCReader, label_records
from glass.testing import write_tiny_voc
from glass.classes import labels_to_classes
from glass.io import read_jsonl

pytestmark = pytest.mark.xdist_group("pipeline")   # its module-scoped fixtures are built once, on one worker

METRICS = {"mbo_i", "mbo_c", "miou", "corloc", "detrate"}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "TOKENIZERS_PARALLELISM": "false",
       "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
# tiny SD: 128-px images, latent 16, attention at latent 16 and 8 (SD 2.1 at 512 px: 64, 32, 16, 8)
GEN = ["--cpu", "--no-progress", "--steps", "2", "--resolution", "128", "--train-resolution", "64", "--precision", "fp32",
       "--items-per-shard", "1", "--batch-size", "2"]
TRAIN = ["--cpu", "--no-progress", "--log-with", "none", "--num-workers", "0", "--precision", "fp32", "--batch-size", "2"]


def script(name):
    "The installed console script `name` (next to this Python, else on PATH)."
    p = Path(sys.executable).parent / name
    found = str(p) if p.exists() else shutil.which(name)
    assert found, f"console script {name} is not installed: pip install -e . (settings.ini declares it)"
    return found


def run(name, *args, cwd):
    r = subprocess.run([script(name), *map(str, args)], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{name} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def tiny_sets(tiny):
    "The tiny models and CPU-sized slots, as glass-train --set arguments."
    return ["--set", f"encoder.model={tiny['dinov2']}", "encoder.resolution=56", f"decoder.model={tiny['sd']}",
            "decoder.resolution=64", "slots.slot_size=32", "slots.mlp_hidden=32", "guidance.mask_resolution=32"]


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    "A six-image VOC tree: glass.testing's two images and four shifted copies (with their maps)."
    from PIL import Image
    root = tmp_path_factory.mktemp("pipeline")
    base = write_tiny_voc(root / "voc") / "VOCdevkit" / "VOC2012"
    lst = base / "ImageSets" / "Segmentation" / "val.txt"
    ids = lst.read_text().split()
    for j in range(4):
        src, k = ids[j % 2], f"2008_{j:06d}"
        a = np.roll(np.asarray(Image.open(base / "JPEGImages" / f"{src}.jpg")), 7 * (j + 1), axis=1)
        Image.fromarray(a).save(base / "JPEGImages" / f"{k}.jpg", quality=95)
        for d in ("SegmentationClass", "SegmentationObject"): shutil.copy(base / d / f"{src}.png", base / d / f"{k}.png")
        ids.append(k)
    lst.write_text("\n".join(ids) + "\n")
    return root


def test_readme_recipe(voc, tiny):
    w = voc
    jpegs = w / "voc" / "VOCdevkit" / "VOC2012" / "JPEGImages"
    # 1. BLIP-2 captions of the real images
    run("glass-caption", jpegs, "--out", "captions.jsonl", "--max-new-tokens", "4", "--no-progress",
        "--set", f"prompts.captioner={tiny['blip2']}", cwd=w)
    caps = read_jsonl(w / "captions.jsonl")
    assert sorted(r["id"] for r in caps) == sorted(p.stem for p in jpegs.glob("*.jpg")) and len(caps) == 6
    kept = [r["id"] for r in caps if r["caption"].strip()]     # the random tiny BLIP-2 says nothing for some images
    assert kept, "no caption at all: glass-generate would have nothing to do"
    # 2. prompts -> generated images + pseudo masks -> shards
    r = run("glass-generate", "--preset", "voc", "--input", "captions.jsonl", "--out", "gen", "--contact-sheet", "2", *GEN,
            "--set", f"decoder.model={tiny['sd']}", "generate.cross_res=8", "generate.self_res=16", cwd=w)
    assert f"{len(kept)} items in gen (complete)" in r.stdout
    if len(kept) < len(caps): assert "empty caption" in r.stderr
    man = json.loads((w / "gen" / "manifest.json").read_text())
    assert man["complete"] and man["num_items"] == len(kept) and len(man["shards"]) == len(kept)
    assert (w / "gen" / "config.json").exists() and (w / "gen" / "contact_sheet.png").exists()
    t, items, _ = read_shard(w / "gen" / man["shards"][0]["file"])
    assert t["images"].shape == (1, 3, 64, 64) and t["latents"].shape == (1, 4, 8, 8) and t["masks"].shape == (1, 64, 64)
    assert [it["id"] for f in sorted((w / "gen").glob("shard-*.safetensors")) for it in read_shard(f, ["masks"])[1]] == kept
    # 3. frozen DINOv2 features, cached once
    r = run("glass-cache-features", "--preset", "voc", "--data", "gen", "--device", "cpu", "--check", "2",
            "--set", f"encoder.model={tiny['dinov2']}", "encoder.resolution=56", cwd=w)
    err = float(re.search(r"largest \|cached - on-the-fly\| over \d+ items: (\S+)", r.stdout).group(1))
    assert err < 5e-3, r.stdout                                    # fp16 storage: rounded once, not recomputed otherwise
    assert sorted(p.name for p in (w / "gen" / "features").glob("shard-*.safetensors")) == \
        sorted(p.name for p in (w / "gen").glob("shard-*.safetensors"))
    # 4. slot training on the cached features (train.cache_features=true fails without a matching cache)
    r = run("glass-train", "--preset", "voc", "--data", "gen", "--out", "run", "--steps", "4", "--log-every", "1", *TRAIN, *tiny_sets(tiny),
            "--set", "train.cache_features=true", cwd=w)
    assert "glass-train: step 4" in r.stdout
    ck = w / "run" / "checkpoints" / "step-0000004"
    assert (ck / "model.safetensors").exists() and json.loads((w / "run" / "config.json").read_text())["train"]["cache_features"]
    log = read_jsonl(w / "run" / "log.jsonl")
    assert [r["step"] for r in log] == [1, 2, 3, 4] and np.isfinite(log[-1]["loss"])
    # the same run on the encoder's features computed on the fly: the same steps, up to the cache's fp16 rounding
    run("glass-train", "--preset", "voc", "--data", "gen", "--out", "run-fly", "--steps", "4", "--log-every", "1", *TRAIN,
        *tiny_sets(tiny), cwd=w)
    fly = read_jsonl(w / "run-fly" / "log.jsonl")
    assert [r["n_matched"] for r in fly] == [r["n_matched"] for r in log]
    np.testing.assert_allclose([r["loss"] for r in fly], [r["loss"] for r in log], rtol=1e-4)
    # 5. evaluation on the real images, both protocols
    run("glass-eval", "--checkpoint", "run", "--data", "voc", "--dataset", "voc", "--out", "eval", "--device", "cpu",
        "--no-progress", "--figures", "0", cwd=w)
    m = json.loads((w / "eval" / "metrics.json").read_text())
    assert m["n_images"] == 6 and set(m["protocols"]) == {"glass", "dinosaur"}
    for p, v in m["protocols"].items():
        assert METRICS <= set(v), (p, v)
        assert all(0 <= v[k] <= 1 for k in METRICS), (p, v)
    assert (w / "eval" / "table.md").exists()


def test_glass_dagger_from_ground_truth_labels(voc, tiny):
    "GLASS†: the prompts' classes are the real images' ground-truth classes; training then matches slots to segments."
    w = voc
    reader = VOCReader(w / "voc")
    recs = label_records(reader)
    for i, r in enumerate(recs):                                  # names agree with the class-map ids through glass.prompts
        assert labels_to_classes(reader.image_labels(i), "voc") == labels_to_classes(r["labels"], "voc") == r["labels"]
    (w / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    run("glass-generate", "--preset", "voc-dagger", "--input", "labels.jsonl", "--out", "gen-dagger", "--contact-sheet", "0",
        *GEN, "--set", f"decoder.model={tiny['sd']}", "generate.cross_res=8", "--set", "generate.self_res=16", cwd=w)
    got = {}
    for f in sorted((w / "gen-dagger").glob("shard-*.safetensors")):
        t, items, _ = read_shard(f)
        for m, it in zip(t["masks"], items): got[it["id"]] = (it, m)
    assert set(got) == {r["id"] for r in recs}
    for r in recs:
        it, m = got[r["id"]]
        assert it["classes"] == r["labels"] and it["prompt"] == " ".join(r["labels"]) and it["caption"] == ""
        vals = set(m.unique().tolist())
        assert vals <= {0, 255, *range(1, len(r["labels"]) + 1)} and vals & set(range(1, len(r["labels"]) + 1)), vals
    # on-the-fly encoder (no feature cache); guidance on the matched pseudo-mask segments
    run("glass-train", "--preset", "voc-dagger", "--data", "gen-dagger", "--out", "run-dagger", "--steps", "2", *TRAIN,
        *tiny_sets(tiny), cwd=w)
    log = [json.loads(l) for l in (w / "run-dagger" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 2 and log[-1]["n_matched"] > 0 and log[-1]["guidance"] > 0


COMMANDS = {"glass-caption": ("glass.captions", "main"), "glass-generate": ("glass.generate", "main"),
            "glass-cache-features": ("glass.features", "main"), "glass-train": ("glass.train", "main"),
            "glass-eval": ("glass.evaluate", "main")}


def readme_commands():
    "(command, options) of each glass command line in the README's sh blocks (`accelerate launch -m glass.x` included)."
    import re, shlex
    readme = Path(__file__).parents[1] / "README.md"
    if not readme.exists(): return []
    blocks = re.findall(r"```sh\n(.*?)```", readme.read_text(), re.S)
    out = []
    for line in (l.split("#")[0] for b in blocks for l in b.splitlines()):
        words = shlex.split(line)
        if words[:3] == ["accelerate", "launch", "-m"]: words = ["glass-" + words[3].split(".")[-1]] + words[4:]
        if words and words[0] in COMMANDS: out.append((words[0], [w for w in words[1:] if w.startswith("--")]))
    return out


def test_readme_commands_use_existing_options(capsys):
    "Every option the README's recipe passes exists in that command's --help (the recipe cannot drift from the CLIs)."
    import importlib
    cmds = readme_commands()
    assert {c for c, _ in cmds} >= {"glass-caption", "glass-generate", "glass-train", "glass-eval"}, cmds
    unknown = []
    for cmd, opts in cmds:
        mod, fn = COMMANDS[cmd]
        with pytest.raises(SystemExit): getattr(importlib.import_module(mod), fn)(["--help"])
        text = capsys.readouterr().out
        unknown += [(cmd, o) for o in opts if o.split("=")[0] not in text]
    assert not unknown, f"README options that the commands do not have: {unknown}"
