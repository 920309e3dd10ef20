"""Bad input, tried as a careless user would. Every case ends in exactly one `glass-<cmd>: error: ...` line that names
the file or field, the right exit status (2 for usage, 1 for the rest), no traceback, and nothing complete on disk
changed. The commands run in-process through their wrapped entry points (the same code the console scripts run),
except where a second process is the point."""
import contextlib, hashlib, io, json, os, subprocess, sys, time, warnings
from pathlib import Path
import numpy as np
import pytest
import torch

from glass.config import preset, save_config
from glass.testing import write_test_shards, tiny_config
import glass.captions, glass.features, glass.train, glass.evaluate, glass.checkpoint, glass.generate

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg",
       "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
MAINS = {"glass-caption": glass.captions.main, "glass-cache-features": glass.features.main, "glass-train": glass.train.main,
         "glass-eval": glass.evaluate.main, "glass-import-release": glass.checkpoint.main, "glass-generate": glass.generate.main}


def run(cmd: str, *argv) -> tuple:
    "Run command `cmd` in-process: (exit status, the error lines it printed on stderr, everything it printed)."
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try: MAINS[cmd]([str(a) for a in argv]); code = 0
        except SystemExit as e: code = e.code
    text = err.getvalue()
    return code, [l for l in text.splitlines() if "error:" in l], text + out.getvalue()


def refused(cmd: str, argv: list, code: int, *needles) -> str:
    "Assert that `cmd argv` exits with `code` and one error line holding every needle; returns that line."
    got, lines, text = run(cmd, *argv)
    assert got == code, f"exit {got}, expected {code}: {text[-2000:]}"
    assert len(lines) == 1, f"expected one error line, got {lines}"
    assert "Traceback" not in text, text
    line = lines[0]
    assert line.startswith(f"{cmd}: error: "), line
    for n in needles: assert str(n) in line, f"{n!r} not in {line!r}"
    return line


def snapshot(folder) -> dict:
    "SHA-256 of every file below `folder` (to show that a refused command changed nothing)."
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@contextlib.contextmanager
def mounted(path: Path, options: str):
    "A tmpfs at `path` (read-only or tiny); skips the test where this machine does not allow mounting."
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode: pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()})")
    try: yield path
    finally: subprocess.run(["umount", "-l", str(path)], capture_output=True)


# ---------------------------------------------------------------- configuration: every command, one line, exit 2
BAD_FIELDS = [("train.steps=0", "train.steps must be >= 1"), ("train.steps=-5", "train.steps must be >= 1"),
              ("train.batch_size=0", "train.batch_size must be >= 1"), ("decoder.kind=transformer", "decoder.kind must be one of"),
              ("train.lr=0", "train.lr must be > 0"), ("generate.fg_threshold=1.5", "generate.fg_threshold must lie in [0, 1]"),
              ("nope.field=1", "unknown config field 'nope.field'")]
COMMON = {"glass-caption": ["--images", "x", "--out", "x.jsonl"], "glass-cache-features": ["--data", "x"],
          "glass-train": ["--data", "x"], "glass-eval": ["--checkpoint", "x"], "glass-import-release": ["x", "--out", "y"],
          "glass-generate": ["--input", "x.jsonl", "--out", "y"]}


@pytest.mark.parametrize("cmd", list(COMMON))
@pytest.mark.parametrize("setting,message", BAD_FIELDS, ids=[b[0] for b in BAD_FIELDS])
def test_a_bad_field_is_one_usage_line(cmd, setting, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused(cmd, COMMON[cmd] + ["--set", setting], 2, message)


@pytest.mark.parametrize("argv,message", [(["--steps", "0"], "train.steps must be >= 1"),
                                          (["--steps", "-5"], "train.steps must be >= 1"),
                                          (["--batch-size", "0"], "train.batch_size must be >= 1"),
                                          (["--preset", "nope"], "nope")])
def test_train_flags_out_of_range(argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused("glass-train", ["--data", "x", *argv], 2, message)


# ---------------------------------------------------------------- training data
@pytest.fixture(scope="module")
def train_setup(tiny, tmp_path_factory):
    d = tmp_path_factory.mktemp("bad-train")
    cfg = tiny_config("voc", **{"decoder.resolution": 64, "slots.num_slots": 3, "train.steps": 2, "train.batch_size": 2,
                                "train.checkpoint_every": 1, "train.log_every": 1, "train.val_every": 0,
                                "train.num_workers": 0, "train.lr": 1e-3})
    save_config(cfg, d / "cfg.json")
    return {"dir": d, "cfg": d / "cfg.json"}


def shards(tmp_path, damage=None) -> Path:
    data = write_test_shards(tmp_path / "data", n_items=6, per_shard=4, resolution=64, latent=(4, 8, 8))
    if damage: damage(data)
    return data


def train_argv(setup, data, out, *more):
    return ["--config", setup["cfg"], "--data", data, "--out", out, "--no-progress", "--log-with", "none", "--cpu", *more]


def _truncate(d): p = d / "shard-000001.safetensors"; p.write_bytes(p.read_bytes()[:-200])
def _zero(d): (d / "shard-000001.safetensors").write_bytes(b"")
def _flip_header(d):
    p = d / "shard-000000.safetensors"; b = bytearray(p.read_bytes()); b[0:8] = (2**40).to_bytes(8, "little"); p.write_bytes(bytes(b))
def _missing(d): (d / "shard-000001.safetensors").unlink()
def _garbage_manifest(d): (d / "manifest.json").write_text("{not json")


def _rewrite(d, key, fn):
    from glass.shards import read_shard, write_shard
    p = d / "shard-000000.safetensors"
    tensors, items, extra = read_shard(p)
    tensors[key] = fn(tensors[key]); write_shard(p, tensors, items, extra)


def _nan_latents(d): _rewrite(d, "latents", lambda t: t.float().fill_(float("nan")).half())
def _labels_out_of_range(d): _rewrite(d, "masks", lambda t: t.fill_(7))


@pytest.mark.parametrize("damage,needle", [(_truncate, "shard-000001.safetensors"), (_zero, "shard-000001.safetensors"),
                                           (_flip_header, "shard-000000.safetensors"), (_missing, "shard-000001.safetensors"),
                                           (_garbage_manifest, "manifest.json"), (_nan_latents, "shard-000000.safetensors"),
                                           (_labels_out_of_range, "shard-000000.safetensors")],
                         ids=["truncated", "zero-byte", "header-flipped", "missing", "garbage-manifest", "nan-latents", "labels"])
def test_train_on_damaged_shards(train_setup, tmp_path, damage, needle):
    data = shards(tmp_path, damage)
    code, lines, text = run("glass-train", *train_argv(train_setup, data, tmp_path / "run"))
    assert code in (1, 2) and len(lines) == 1 and "Traceback" not in text, text[-2000:]
    assert needle in lines[0], lines[0]
    assert not (tmp_path / "run" / "checkpoints").exists() or not any((tmp_path / "run" / "checkpoints").iterdir())


@pytest.mark.parametrize("field,value,needle", [("decoder.model", "/nonexistent/sd", "/nonexistent/sd"),
                                                ("encoder.model", "/nonexistent/dino", "/nonexistent/dino"),
                                                ("encoder.model", "facebook/dinov2-giant", "not reachable")])
def test_train_model_folders(train_setup, tmp_path, field, value, needle):
    refused("glass-train", train_argv(train_setup, shards(tmp_path), tmp_path / "run", "--set", f"{field}={value}"), 1, needle, field)


def test_train_on_a_folder_that_is_not_a_model(train_setup, tmp_path):
    (tmp_path / "empty").mkdir()
    refused("glass-train", train_argv(train_setup, shards(tmp_path), tmp_path / "run", "--set", f"decoder.model={tmp_path / 'empty'}"),
            1, "empty")


def test_train_into_a_read_only_folder(train_setup, tmp_path):
    data = shards(tmp_path)
    with mounted(tmp_path / "ro", "ro,size=1m") as ro:
        refused("glass-train", train_argv(train_setup, data, ro / "run"), 1, "read-only")


def test_train_on_a_full_disk_leaves_no_temp_checkpoint(train_setup, tmp_path):
    data = shards(tmp_path)
    with mounted(tmp_path / "small", "size=96k") as small:
        refused("glass-train", train_argv(train_setup, data, small / "run"), 1, "disk is full")
        ck = small / "run" / "checkpoints"
        assert not ck.exists() or not [p for p in ck.iterdir() if p.name.startswith(".tmp-")]


def _finished_run(setup, tmp_path, steps=2):
    data = shards(tmp_path)
    code, _, text = run("glass-train", *train_argv(setup, data, tmp_path / "run", "--steps", steps))
    assert code == 0, text[-2000:]
    return data, tmp_path / "run"


def test_a_refused_resume_changes_nothing(train_setup, tmp_path):
    data, out = _finished_run(train_setup, tmp_path)
    before = snapshot(out)
    refused("glass-train", train_argv(train_setup, data, out, "--resume", "--set", "slots.slot_size=16"), 1, "slot")
    assert snapshot(out) == before


def test_a_rerun_without_resume_is_refused(train_setup, tmp_path):
    data, out = _finished_run(train_setup, tmp_path)
    before = snapshot(out)
    refused("glass-train", train_argv(train_setup, data, out), 1, "--resume", "--overwrite")
    import shutil; shutil.rmtree(out / "checkpoints")                 # logged steps, no checkpoint
    before = snapshot(out)
    refused("glass-train", train_argv(train_setup, data, out), 1, "log.jsonl", "--resume", "--overwrite")
    assert snapshot(out) == before
    code, _, text = run("glass-train", *train_argv(train_setup, data, out, "--overwrite"))
    assert code == 0, text[-2000:]
    steps = [json.loads(l)["step"] for l in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2]                                            # no duplicated rows


def test_a_torn_log_line_is_dropped_on_resume(train_setup, tmp_path):
    data, out = _finished_run(train_setup, tmp_path)
    with open(out / "log.jsonl", "a") as f: f.write('{"step": 3, "loss": 0.')     # killed mid-write
    code, _, text = run("glass-train", *train_argv(train_setup, data, out, "--resume", "--steps", "3"))
    assert code == 0 and "Traceback" not in text, text[-2000:]
    steps = [json.loads(l)["step"] for l in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_bad_bytes_in_state_json_are_named(train_setup, tmp_path):
    data, out = _finished_run(train_setup, tmp_path)
    state = out / "checkpoints" / "step-0000002" / "state.json"
    state.write_bytes(b"\xff\xfe garbage")
    code, _, text = run("glass-train", *train_argv(train_setup, data, out, "--resume", "--steps", "3"))
    assert code == 0 and str(state) in text, text[-2000:]              # named, and the run falls back to step 1


def test_two_trainings_into_one_folder(train_setup, tmp_path):
    data = shards(tmp_path)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "glass.train", *map(str, train_argv(train_setup, data, out, "--steps", "40"))]
    first = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.time()
        while not (out / ".glass-lock.json").exists():
            assert first.poll() is None and time.time() - t0 < 120, "the first training never took its lock"
            time.sleep(0.2)
        t1 = time.time()
        second = subprocess.run(cmd, env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1 and "in use by glass-train" in second.stderr, second.stderr[-2000:]
        assert "Traceback" not in second.stderr and time.time() - t1 < 60
    finally:
        first.wait(timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    steps = [json.loads(l)["step"] for l in (out / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 41))                                 # one writer, no duplicated rows


# ---------------------------------------------------------------- evaluation
@pytest.fixture(scope="module")
def checkpoint_run(train_setup, tmp_path_factory):
    d = tmp_path_factory.mktemp("bad-eval")
    data, out = _finished_run(train_setup, d)
    return out


def test_eval_missing_checkpoint(tmp_path):
    refused("glass-eval", ["--checkpoint", tmp_path / "nowhere", "--dataset", "voc", "--data", tmp_path], 1, "nowhere")


def test_eval_toy_data_folder_that_does_not_exist(checkpoint_run, tmp_path):
    refused("glass-eval", ["--checkpoint", checkpoint_run, "--dataset", "toy", "--data", tmp_path / "typo", "--out", tmp_path / "e"],
            1, "typo")
    assert not (tmp_path / "e").exists()


def test_eval_into_a_read_only_folder(checkpoint_run, tmp_path):
    from glass.testing import write_tiny_voc
    voc = write_tiny_voc(tmp_path / "voc")
    with mounted(tmp_path / "ro", "ro,size=1m") as ro:
        refused("glass-eval", ["--checkpoint", checkpoint_run, "--dataset", "voc", "--data", voc, "--out", ro / "e",
                               "--no-progress", "--figures", "0"], 1, "read-only")


def test_eval_warns_when_the_config_disagrees_with_the_checkpoint(checkpoint_run, tmp_path):
    from glass.config import load_config
    from glass.testing import write_tiny_voc
    cfg = load_config(checkpoint_run / "config.json"); cfg.slots.num_slots = 5
    save_config(cfg, tmp_path / "other.json")
    voc = write_tiny_voc(tmp_path / "voc")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        code = glass.evaluate.main(["--checkpoint", str(checkpoint_run), "--config", str(tmp_path / "other.json"), "--dataset", "voc",
                                    "--data", str(voc), "--out", str(tmp_path / "e"), "--no-progress", "--figures", "0"])
    assert code is None
    assert any("slots.num_slots: 3 -> 5" in str(x.message) for x in w), [str(x.message) for x in w]


# ---------------------------------------------------------------- captions and the feature cache
@pytest.fixture()
def images(tmp_path):
    from PIL import Image
    d = tmp_path / "imgs"; d.mkdir()
    for i in range(3): Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(d / f"im{i}.jpg")
    return d


def test_caption_a_file_that_is_not_an_image(tiny, images, tmp_path):
    (images / "im9.jpg").write_text("not a picture")
    refused("glass-caption", [images, "--out", tmp_path / "c.jsonl", "--model", tiny["blip2"], "--no-progress"], 1, "im9.jpg")


def test_caption_a_truncated_jpeg(tiny, images, tmp_path):
    p = images / "im1.jpg"; p.write_bytes(p.read_bytes()[:200])
    refused("glass-caption", [images, "--out", tmp_path / "c.jsonl", "--model", tiny["blip2"], "--no-progress"], 1, "im1.jpg")


@pytest.mark.parametrize("model,needle", [("/nonexistent/blip", "/nonexistent/blip"), ("Salesforce/blip2-flan-t5-xxl", "not reachable")])
def test_caption_model_folders(images, tmp_path, model, needle):
    refused("glass-caption", [images, "--out", tmp_path / "c.jsonl", "--model", model, "--no-progress"], 1, needle)


def test_caption_a_folder_that_is_not_a_model(images, tmp_path):
    (tmp_path / "empty").mkdir()
    refused("glass-caption", [images, "--out", tmp_path / "c.jsonl", "--model", tmp_path / "empty", "--no-progress"], 1, "empty")


def test_caption_into_a_read_only_folder(tiny, images, tmp_path):
    with mounted(tmp_path / "ro", "ro,size=1m") as ro:
        refused("glass-caption", [images, "--out", ro / "c.jsonl", "--model", tiny["blip2"], "--no-progress"], 1, "read-only")


def _features_argv(tiny, data, *more):
    return ["--data", data, "--set", f"encoder.model={tiny['dinov2']}", "encoder.resolution=56", "--device", "cpu", *more]


@pytest.mark.parametrize("model,needle", [("/nonexistent/dino", "/nonexistent/dino"), ("facebook/dinov2-giant", "not reachable")])
def test_features_model_folders(tiny, tmp_path, model, needle):
    data = shards(tmp_path)
    refused("glass-cache-features", ["--data", data, "--set", f"encoder.model={model}", "--device", "cpu"], 1, needle)


def test_features_missing_data_folder(tiny, tmp_path):
    refused("glass-cache-features", _features_argv(tiny, tmp_path / "nope"), 2, "nope")


def test_features_into_a_read_only_folder(tiny, tmp_path):
    data = shards(tmp_path)
    with mounted(tmp_path / "ro", "ro,size=1m") as ro:
        refused("glass-cache-features", _features_argv(tiny, data, "--out", ro / "features"), 1, "read-only")


# ---------------------------------------------------------------- the released checkpoint
def test_import_release_missing_folder(tmp_path):
    refused("glass-import-release", [tmp_path / "nope", "--out", tmp_path / "run"], 1, "nope")


def test_import_release_folder_without_weights(tmp_path):
    (tmp_path / "rel").mkdir(); (tmp_path / "rel" / "config.json").write_text("{}")
    refused("glass-import-release", [tmp_path / "rel", "--out", tmp_path / "run"], 1, "rel")


# ---------------------------------------------------------------- generation
CAPS = ["a dog next to a red car", "a cat on a chair", "a man and a dog on the road", "a bus on the street"]
SMALL = {"generate.resolution": 128, "generate.steps": 2, "generate.cross_res": 8, "generate.self_res": 16,
         "generate.train_resolution": 64, "generate.items_per_shard": 2, "generate.batch_size": 2, "generate.precision": "fp32"}


def records(path, n, caption=lambda i: CAPS[i % len(CAPS)]):
    path.write_text("".join(json.dumps({"id": i, "caption": caption(i)}) + "\n" for i in range(n)))
    return path


def gen_argv(tiny, inp, out, *more):
    sets = [f"{k}={v}" for k, v in {**SMALL, "decoder.model": str(tiny["sd"])}.items()]
    return ["--input", inp, "--out", out, "--no-progress", "--cpu", "--contact-sheet", "0", "--set", *sets, *more]


def ids_in(folder):
    from glass.shards import read_shard
    return [it["id"] for f in sorted(Path(folder).glob("shard-*.safetensors")) for it in read_shard(f, keys=["masks"])[1]]


def test_generate_binary_input(tiny, tmp_path):
    (tmp_path / "in.jsonl").write_bytes(bytes(range(256)) * 4)
    refused("glass-generate", gen_argv(tiny, tmp_path / "in.jsonl", tmp_path / "out"), 2, "in.jsonl", "not UTF-8")


def test_generate_checks_every_label_before_generating(tiny, tmp_path):
    lines = [json.dumps({"id": i, "labels": ["dog"]}) for i in range(100)]
    lines[94] = json.dumps({"id": 94, "labels": ["unicorn"]})
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    t0 = time.time()
    refused("glass-generate", gen_argv(tiny, tmp_path / "in.jsonl", tmp_path / "out", "prompts.source=labels", "prompts.vocab=voc"),
            2, "line 95", "unicorn")
    assert not list((tmp_path / "out").glob("shard-*")) and time.time() - t0 < 30


def test_generate_missing_model_folder(tmp_path):
    inp = records(tmp_path / "in.jsonl", 2)
    refused("glass-generate", ["--input", inp, "--out", tmp_path / "out", "--cpu", "--no-progress",
                               "--set", "decoder.model=/nonexistent/sd"], 1, "/nonexistent/sd")


def test_generate_into_a_read_only_folder(tiny, tmp_path):
    inp = records(tmp_path / "in.jsonl", 2)
    with mounted(tmp_path / "ro", "ro,size=1m") as ro:
        refused("glass-generate", gen_argv(tiny, inp, ro / "out"), 1, "read-only")


def test_generate_on_a_full_disk_keeps_complete_shards(tiny, tmp_path):
    inp = records(tmp_path / "in.jsonl", 40)
    with mounted(tmp_path / "small", "size=160k") as small:
        refused("glass-generate", gen_argv(tiny, inp, small / "out"), 1, "disk is full")
        left = sorted(small.joinpath("out").glob("*"))
        assert not [p for p in left if p.name.endswith(".tmp")], left          # no half-written file
        from glass.shards import read_shard
        for p in small.joinpath("out").glob("shard-*.safetensors"): read_shard(p)   # what is there is complete


def test_generate_resume_with_changed_input_names_the_first_difference(tiny, tmp_path):
    inp, out = records(tmp_path / "in.jsonl", 6), tmp_path / "out"
    assert run("glass-generate", *gen_argv(tiny, inp, out))[0] == 0
    before = snapshot(out)
    records(inp, 6, caption=lambda i: "a horse" if i == 3 else CAPS[i % len(CAPS)])
    refused("glass-generate", gen_argv(tiny, inp, out), 1, "shard-000001.safetensors", "item 1", "line 4 holds id 3")
    assert snapshot(out) == before


def test_generate_resume_with_other_settings_lists_them(tiny, tmp_path):
    inp, out = records(tmp_path / "in.jsonl", 4), tmp_path / "out"
    assert run("glass-generate", *gen_argv(tiny, inp, out))[0] == 0
    (out / "config.json").unlink()                                        # even without the settings file
    before = snapshot(out)
    refused("glass-generate", gen_argv(tiny, inp, out, "generate.seed=1000"), 1, "generate.seed: 0 -> 1000")
    assert snapshot(out) == before


def test_two_generations_into_one_folder(tiny, tmp_path):
    inp, out = records(tmp_path / "in.jsonl", 24), tmp_path / "out"
    cmd = lambda seed: [sys.executable, "-m", "glass.generate", *map(str, gen_argv(tiny, inp, out, f"generate.seed={seed}"))]
    first = subprocess.Popen(cmd(0), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.time()
        while not (out / ".glass-lock.json").exists():
            assert first.poll() is None and time.time() - t0 < 120, "the first generation never took its lock"
            time.sleep(0.05)
        t1 = time.time()
        second = subprocess.run(cmd(1000), env=ENV, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1 and "in use by glass-generate" in second.stderr, second.stderr[-2000:]
        assert time.time() - t1 < 60 and "Traceback" not in second.stderr
    finally:
        first.wait(timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    from glass.shards import shard_header
    seeds = {shard_header(p)["extra"]["settings"]["generate.seed"] for p in out.glob("shard-*.safetensors")}
    assert seeds == {0} and ids_in(out) == list(range(24)) and json.loads((out / "config.json").read_text())["generate"]["seed"] == 0


def test_zeroed_bytes_in_a_shard_are_found(train_setup, tmp_path):
    from glass.shards import write_manifest
    data = shards(tmp_path)
    write_manifest(data, 6, 4)                                            # with SHA-256s
    p = data / "shard-000000.safetensors"; b = bytearray(p.read_bytes()); b[-64:] = bytes(64); p.write_bytes(bytes(b))
    refused("glass-train", train_argv(train_setup, data, tmp_path / "run", "--verify-data"), 1, "shard-000000.safetensors", "SHA-256")


# ---------------------------------------------------------------- the toy world's saved split
def test_eval_a_truncated_toy_split(checkpoint_run, tmp_path):
    from glass.toy.world import render_split, save_split
    folder = tmp_path / "world"; save_split(render_split("val", 8, seed=0), folder)
    npz = next(folder.glob("*.npz")); npz.write_bytes(npz.read_bytes()[:500])
    refused("glass-eval", ["--checkpoint", checkpoint_run, "--dataset", "toy", "--data", folder, "--out", tmp_path / "e",
                           "--no-progress", "--figures", "0"], 1, npz.name)


# ---------------------------------------------------------------- an --out that is not ours, flags below 1, a failed start
NOT_CAPTIONS = {"tsv": (b"name\tnote\nim0\tkeep me\n", ["notes.tsv:1: not valid JSON"]),
                "bad-middle-line": (b'{"id": "im0", "caption": "a"}\n{"id": "im1", "caption": oops}\n{"id": "im2", "caption": "c"}\n',
                                    ["notes.tsv:2: not valid JSON", "fix or delete that line"]),
                "bad-last-line": (b'{"id": "im0", "caption": "a"}\n{"id": "im1", "caption": oops}\n',   # ends in "\n": not torn
                                  ["notes.tsv:2: not valid JSON"]),
                "latin-1": (b'{"id": "im0", "caption": "caf\xe9"}\n',              # 29 ASCII bytes before the 0xe9
                            ["notes.tsv: not UTF-8 text (byte 0xe9 at position 29)"]),
                "no-id": (b'{"id": "im0", "caption": "a"}\n\n{"image": "x.jpg", "caption": "b"}\n',
                          ['notes.tsv:3: the record has no "id" field', "--out"])}


@pytest.mark.parametrize("kind", list(NOT_CAPTIONS))
def test_caption_into_a_file_that_is_not_captions(tiny, images, tmp_path, kind):
    content, needles = NOT_CAPTIONS[kind]
    out = tmp_path / "notes.tsv"; out.write_bytes(content)
    refused("glass-caption", [images, "--out", out, "--model", tiny["blip2"], "--no-progress", "--max-new-tokens", "3"], 1,
            str(tmp_path), *needles)
    assert out.read_bytes() == content and sorted(p.name for p in tmp_path.iterdir()) == ["imgs", "notes.tsv"]


@pytest.mark.parametrize("flag", ["--num-beams", "--max-new-tokens", "--batch-size"])
@pytest.mark.parametrize("value", ["0", "-2"])
def test_caption_flags_below_one(images, tmp_path, flag, value):
    refused("glass-caption", [images, "--out", tmp_path / "c.jsonl", flag, value, "--no-progress"], 2,
            f"argument {flag}: must be at least 1; got {value}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs"]           # no empty .partial


def test_generate_after_a_failed_start_takes_the_corrected_settings(tiny, tmp_path):
    inp, out = records(tmp_path / "in.jsonl", 4), tmp_path / "out"
    refused("glass-generate", ["--input", inp, "--out", out, "--cpu", "--no-progress", "--set", "decoder.model=/nonexistent/sd"],
            1, "/nonexistent/sd")
    assert not (out / "config.json").exists()                              # a failed start decides no settings
    save_config(preset("coco", **{"decoder.model": "/nonexistent/sd"}), out / "config.json")   # as older versions left it
    code, lines, text = run("glass-generate", *gen_argv(tiny, inp, out))
    assert code == 0 and not lines, text[-2000:]
    assert ids_in(out) == [0, 1, 2, 3] and json.loads((out / "config.json").read_text())["decoder"]["model"] == str(tiny["sd"])
    before = snapshot(out)                                                 # shards made: other settings are refused again
    refused("glass-generate", gen_argv(tiny, inp, out, "generate.seed=1000"), 1, f"{out} was generated with other settings",
            "generate.seed: 0 -> 1000")
    assert snapshot(out) == before


# ---------------------------------------------------------------- devices, config files, counts, the data folder (audit)
def test_an_unusable_device_is_named(tmp_path):
    data = shards(tmp_path)
    refused("glass-cache-features", ["--data", data, "--device", "gpu"], 1, "--device 'gpu' is not a device", "use auto, cpu")
    if not torch.cuda.is_available():
        refused("glass-cache-features", ["--data", data, "--device", "cuda"], 1, "no CUDA device", "use --device cpu")
    assert not (data / "features").exists()


def test_a_config_file_that_is_not_one(train_setup, tmp_path):
    data, bad = shards(tmp_path), tmp_path / "bad"
    bad.mkdir()
    (bad / "latin1.json").write_bytes('{"name": "caf\xe9"}'.encode("latin-1"))
    (bad / "list.json").write_text("[1, 2]")
    for config, needle in ((bad, "is a folder: pass the config.json inside it"), (bad / "latin1.json", "not UTF-8 text"),
                           (bad / "list.json", "not a glass configuration")):
        refused("glass-train", ["--config", config, "--data", data, "--out", tmp_path / "run"], 2, needle, str(config))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("cmd,argv,message", [
    ("glass-eval", ["--checkpoint", "x", "--batch-size", "0"], "argument --batch-size: must be at least 1; got 0"),
    ("glass-eval", ["--checkpoint", "x", "--figures", "-1"], "argument --figures: must be at least 0; got -1"),
    ("glass-cache-features", ["--data", "x", "--batch-size", "0"], "argument --batch-size: must be at least 1; got 0"),
    ("glass-train", ["--data", "x", "--max-steps", "0"], "argument --max-steps: must be at least 1; got 0"),
    ("glass-generate", ["--input", "x.jsonl", "--out", "y", "--limit", "-1"], "argument --limit: must be at least 1; got -1"),
    ("glass-generate", ["--input", "x.jsonl", "--out", "y", "--set", "prompts.vocab=cocoo"], "prompts.vocab: vocab 'cocoo' is neither"),
    ("glass-train", ["--data", "x", "--set", "train.betas=0.9"], "train.betas must be two numbers in [0, 1)")])
def test_counts_are_checked_when_parsed(cmd, argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused(cmd, argv, 2, message)


def test_a_run_is_not_written_into_its_data(train_setup, tmp_path):
    data = shards(tmp_path)
    (data / "config.json").write_text(json.dumps({"written by": "glass-generate"}))
    before = snapshot(data)
    refused("glass-train", train_argv(train_setup, data, data), 1, "holds generated shards", "choose another --out")
    assert snapshot(data) == before                                # the data's config.json (and all else) untouched


def test_a_path_of_the_wrong_kind_is_named(train_setup, tmp_path):
    (tmp_path / "afile").write_text("x"); (tmp_path / "adir").mkdir()
    refused("glass-generate", ["--input", tmp_path / "adir", "--out", tmp_path / "g"], 2, "adir is a folder", "JSONL")
    refused("glass-cache-features", ["--data", tmp_path / "afile"], 2, "afile is a file, not a folder", "--data")
    refused("glass-train", train_argv(train_setup, shards(tmp_path), tmp_path / "afile"), 1,
            "a file stands where a folder is to be written", "afile")
    assert (tmp_path / "afile").read_text() == "x" and not (tmp_path / "g").exists()



@pytest.mark.parametrize("cmd", list(MAINS))
def test_every_command_takes_debug(cmd, tmp_path, monkeypatch):
    "Every command takes --debug (the core chapter shows what it does: the exception goes through with its traceback)."
    monkeypatch.chdir(tmp_path)
    code, _, text = run(cmd, "--help")
    assert code == 0 and "--debug" in text, text[-1500:]


def test_import_release_unreadable_files(tmp_path):
    "A .bin that the weights-only unpickler refuses (torch says so in six lines) and a config.json that is not UTF-8: one line each."
    import datetime, pickle
    rel = tmp_path / "rel"; rel.mkdir()
    (rel / "config.json").write_text("{}")
    (rel / "diffusion_pytorch_model.bin").write_bytes(pickle.dumps({"w": datetime.date(2020, 1, 1)}))   # not weights only
    refused("glass-import-release", [rel, "--out", tmp_path / "run"], 1, "diffusion_pytorch_model.bin cannot be read",
            "UnpicklingError: Weights only load failed")
    (rel / "config.json").write_bytes('{"name": "caf\xe9"}'.encode("latin-1"))
    refused("glass-import-release", [rel, "--out", tmp_path / "run"], 1, "config.json: not UTF-8 text (byte 0xe9")
    assert not (tmp_path / "run").exists()


def test_a_manifest_that_is_not_text(train_setup, tmp_path):
    data = shards(tmp_path)
    (data / "manifest.json").write_bytes(b'{"shards": "caf\xe9"}')
    before = snapshot(data)
    refused("glass-train", train_argv(train_setup, data, tmp_path / "run"), 1, "manifest.json is not valid JSON text", "rerun glass-generate")
    assert snapshot(data) == before
