"glass.train on a CPU with tiny models: exact resume after SIGKILL, fallback past a damaged checkpoint, the papermill notebook, the command line."
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
import torch

from glass.core import preset, save_config
from glass.testing import write_test_shards
from glass.checkpoint import list_checkpoints, checkpoint_name
from glass.train import train, build_parser, read_log

pytestmark = pytest.mark.xdist_group("train")   # its module-scoped fixtures are built once, on one worker

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
STEPS, EVERY = 12, 3


def tiny_overrides(tiny, steps=STEPS):
    "Fields that turn a preset into a tiny CPU run (as glass.model.tiny_config, with 64-px shards)."
    return {"encoder.model": str(tiny["dinov2"]), "encoder.resolution": 56, "decoder.model": str(tiny["sd"]),
            "decoder.resolution": 64, "slots.num_slots": 3, "slots.slot_size": 32, "slots.mlp_hidden": 32,
            "slots.iters": 2, "guidance.mask_resolution": 32, "train.steps": steps, "train.batch_size": 2,
            "train.lr": 1e-3, "train.precision": "fp32", "train.checkpoint_every": EVERY, "train.keep_checkpoints": 3,
            "train.log_every": 1, "train.val_every": 1000, "train.num_workers": 0, "eval.val_steps": 2, "train.seed": 3}


@pytest.fixture(scope="module")
def setup(tiny, tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    data = write_test_shards(d / "data", n_items=12, per_shard=8, resolution=64, latent=(4, 8, 8))
    return {"data": data, "cfg": preset("voc", **tiny_overrides(tiny)), "dir": d}


@pytest.fixture(scope="module")
def reference(setup):
    "An uninterrupted run of STEPS steps."
    out = setup["dir"] / "ref"
    s = train(setup["cfg"], setup["data"], out, progress=False, log_with="none")
    assert s["step"] == STEPS
    return out


def weights(run, step=STEPS):
    from safetensors.torch import load_file
    return load_file(str(Path(run) / "checkpoints" / checkpoint_name(step) / "model.safetensors"))


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a: torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=lambda m: f"{k}: {m}")


def test_kill_and_resume_reaches_the_same_weights(setup, reference):
    out = setup["dir"] / "killed"
    cfgf = setup["dir"] / "cfg.json"; save_config(setup["cfg"], cfgf)
    cmd = [sys.executable, "-m", "glass.train", "--config", str(cfgf), "--data", str(setup["data"]), "--out", str(out),
           "--no-progress", "--log-with", "none", "--cpu"]
    env = {**ENV, "OMP_NUM_THREADS": str(torch.get_num_threads())}   # the reference's thread count: same float sums
    p = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    t0 = time.time()
    while not list_checkpoints(out) and p.poll() is None and time.time() - t0 < 120: time.sleep(0.01)
    p.send_signal(signal.SIGKILL); p.wait()
    log = p.stdout.read().decode()
    assert p.returncode == -signal.SIGKILL, f"the run ended by itself before it could be killed:\n{log}"
    done = [int(c.name.split("-")[1]) for c in list_checkpoints(out)]
    assert done and max(done) < STEPS, done                        # killed mid-run, after a checkpoint
    s = train(setup["cfg"], setup["data"], out, resume=True, progress=False, log_with="none")
    assert s["start_step"] == max(done) and s["step"] == STEPS
    assert_same(weights(out), weights(reference))
    steps = [r["step"] for r in read_log(out)]
    assert steps == list(range(1, STEPS + 1)), steps               # no duplicated rows from the killed run
    ref_loss = [r["loss"] for r in read_log(reference)]
    np.testing.assert_allclose([r["loss"] for r in read_log(out)], ref_loss, rtol=1e-5)


def test_kernels_are_recorded_and_a_resume_on_other_kernels_says_so(setup):
    "`--kernels portable` holds a fresh glass-train process to AVX2 paths; its checkpoints name them; resuming on other paths says so."
    from glass.core import PORTABLE_CPU_KERNELS
    import platform
    out, cfgf = setup["dir"] / "kernels", setup["dir"] / "cfg-kernels.json"
    save_config(setup["cfg"], cfgf)
    env = {k: v for k, v in ENV.items() if k not in PORTABLE_CPU_KERNELS}          # the native paths, whatever this process holds
    def run(steps, kernels, *extra):
        cmd = [sys.executable, "-m", "glass.train", "--config", str(cfgf), "--data", str(setup["data"]), "--out", str(out),
               "--no-progress", "--log-with", "none", "--cpu", "--steps", str(steps), "--kernels", kernels, *extra]
        r = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-3000:]
        return r.stdout, json.loads((out / "checkpoints" / checkpoint_name(steps) / "state.json").read_text())["cpu_kernels"]
    _, portable = run(EVERY, "portable")
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert portable == "AVX2 kernels; MKL_CBWR=AVX2, ONEDNN_MAX_CPU_ISA=AVX2", portable
    said, native = run(2 * EVERY, "native", "--resume")
    assert native != portable and "MKL_CBWR" not in native, native
    assert f"{checkpoint_name(EVERY)} was computed with {portable}, this process computes with {native}" in said, said
    said, again = run(3 * EVERY, "native", "--resume")
    assert again == native and "was computed with" not in said, said                  # the same paths: nothing to say


def test_damaged_newest_checkpoint_falls_back(setup, reference, capsys):
    out = setup["dir"] / "damaged"
    shutil.copytree(reference, out)
    newest = list_checkpoints(out)[-1]
    assert newest.name == checkpoint_name(STEPS)
    f = newest / "model.safetensors"; f.write_bytes(f.read_bytes()[:100])          # truncated
    s = train(setup["cfg"], setup["data"], out, resume=True, progress=False, log_with="none")
    msg = capsys.readouterr().out
    assert f"checkpoint {checkpoint_name(STEPS)} is damaged" in msg and "truncated" in msg, msg
    assert f"Falling back to the previous checkpoint ({checkpoint_name(STEPS - EVERY)})" in msg, msg
    assert s["start_step"] == STEPS - EVERY and s["step"] == STEPS
    assert_same(weights(out), weights(reference))                  # retrained to the same weights
    # every checkpoint damaged: a clear error, nothing trained
    for c in list_checkpoints(out): (c / "optimizer.pt").write_bytes(b"junk")
    with pytest.raises(RuntimeError, match="no usable checkpoint"):
        train(setup["cfg"], setup["data"], out, resume=True, progress=False, log_with="none")


def test_existing_run_needs_resume_and_nonfinite_loss_stops(setup, reference):
    with pytest.raises(FileExistsError, match="--resume"):
        train(setup["cfg"], setup["data"], reference, progress=False, log_with="none")
    from glass.model import GLASS
    model = GLASS(setup["cfg"], device="cpu")
    step_fn, calls = model.training_step, []
    def poisoned(batch):
        r = step_fn(batch); calls.append(1)
        if len(calls) == 5: r["loss"] = r["loss"] * float("nan")
        return r
    model.training_step = poisoned
    out = setup["dir"] / "nan"
    with pytest.raises(FloatingPointError, match="non-finite loss .* at step 5"):
        train(setup["cfg"], setup["data"], out, model=model, progress=False, log_with="none")
    assert [c.name for c in list_checkpoints(out)] == [checkpoint_name(3)]   # nothing written after the bad step


def test_papermill_notebook(setup, tiny, tmp_path):
    import papermill as pm
    out = tmp_path / "run"
    over = [f"{k}={v}" for k, v in tiny_overrides(tiny, steps=4).items()
            if k not in ("train.steps", "train.batch_size", "train.precision", "train.val_every", "train.checkpoint_every")]
    over += ["train.val_every=4", "train.checkpoint_every=2", "train.grad_accum=2"]
    nb = pm.execute_notebook(str(ROOT / "nbs/90_driver_train.ipynb"), str(tmp_path / "train.ipynb"), kernel_name="python3",
                             cwd=str(ROOT / "nbs"), progress_bar=False,
                             parameters=dict(preset="coco", data=str(setup["data"]), out=str(out), steps=4,
                                             batch_size=2, precision="bf16", overrides=over, progress=False))
    assert [c.name for c in list_checkpoints(out)] == [checkpoint_name(2), checkpoint_name(4)]
    assert [r["step"] for r in read_log(out)] == [1, 2, 3, 4]
    assert (out / "figures" / f"{checkpoint_name(4)}.png").stat().st_size > 1000
    assert json.loads((out / "config.json").read_text())["slots"]["num_slots"] == 3
    state = json.loads((out / "checkpoints" / checkpoint_name(4) / "state.json").read_text())
    assert state["position"] == 4 * 2 * 2 and state["images_per_step"] == 4          # batch 2 x 2 micro-batches
    assert list((out / "tb").rglob("events.out.tfevents.*"))         # TensorBoard by default
    kinds = [o.get("output_type") for c in nb.cells for o in c.get("outputs", [])]
    pngs = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert "error" not in kinds and len(pngs) >= 2                   # the curves and the figure, inline


def test_help_documents_every_option():
    r = subprocess.run([sys.executable, "-m", "glass.train", "--help"], env=ENV, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for a in build_parser()._actions:
        for opt in a.option_strings: assert opt in r.stdout, opt
        assert a.help, f"{a.option_strings} has no help"
    for name in ("voc", "coco", "toy", "coco-dagger", "accelerate launch -m glass.train"): assert name in r.stdout
    if shutil.which("glass-train"):
        r2 = subprocess.run(["glass-train", "--help"], env=ENV, capture_output=True, text=True)
        assert r2.returncode == 0 and r2.stdout == r.stdout


@pytest.mark.parametrize("args,expect", [
    (["--preset", "vocc", "--data", "."], ["unknown preset 'vocc'", "voc", "coco-dagger"]),
    (["--preset", "voc", "--data", "/nonexistent/shards"], ["/nonexistent/shards does not exist", "glass-generate"]),
    (["--preset", "voc", "--data", "tests"], ["holds no shards", "manifest.json"]),
])
def test_bad_arguments_fail_at_once(args, expect):
    r = subprocess.run([sys.executable, "-m", "glass.train", *args], env=ENV, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    for e in expect: assert e in r.stderr, (e, r.stderr)


def test_bad_config_field_fails_at_once(setup):
    r = subprocess.run([sys.executable, "-m", "glass.train", "--data", str(setup["data"]), "--set", "slots.num_slot=3"],
                       env=ENV, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "slots.num_slots" in r.stderr, r.stderr


def test_ddp_two_processes(setup):
    "Two CPU processes (gloo): each takes its disjoint share of every global batch (the sampler's test in nbs/80_train), saves its own RNG state, and ends with the same weights."
    out = setup["dir"] / "ddp"
    cfgf = setup["dir"] / "cfg-ddp.json"; save_config(setup["cfg"], cfgf)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "glass.train",
           "--config", str(cfgf), "--data", str(setup["data"]), "--out", str(out), "--no-progress", "--log-with", "none",
           "--cpu", "--max-steps", "3"]
    r = subprocess.run(cmd, env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ck = out / "checkpoints" / checkpoint_name(3)
    state = json.loads((ck / "state.json").read_text())
    assert state["world_size"] == 2 and state["position"] == 3 * 2 * 2
    assert len(state["weights_sha256"]) == 2 and len(set(state["weights_sha256"])) == 1   # both replicas end identical
    from safetensors.torch import load_file
    from glass.model import GLASS
    m = GLASS(setup["cfg"], device="cpu"); m.load_trainable_state_dict(load_file(str(ck / "model.safetensors")))
    from glass.checkpoint import weights_sha256
    assert weights_sha256(m) == state["weights_sha256"][0]                           # and equal the saved weights
    assert (ck / "rng-0.pt").exists() and (ck / "rng-1.pt").exists()
    assert r.stdout.count("glass-train: step 3") == 1                                # the main process reports




FIXED_DRAWS_RUN = """import sys
from glass.config import load_config
from glass.testing import fixed_draws_glass
from glass.train import train
cfg = load_config(sys.argv[1])
train(cfg, sys.argv[2], sys.argv[3], model=fixed_draws_glass(cfg), progress=False, log_with=None, cpu=True)
"""


def test_ddp_averages_like_one_process(setup, tiny):
    """Two processes of batch 2 take the same steps as one process of batch 4 (DDP averages the gradients), every draw
    fixed. Each item holds one segment: the guidance is a mean over a process's matched pairs (nbs/80_train)."""
    d = setup["dir"] / "ddp-vs-one"; d.mkdir()
    data = write_test_shards(d / "data", n_items=12, per_shard=8, resolution=64, latent=(4, 8, 8), classes=("dog",))
    (d / "run.py").write_text(FIXED_DRAWS_RUN)
    fixed = {"train.steps": 2, "train.eps": 1e-2, "train.grad_clip": 0.0, "train.checkpoint_every": 2}
    for bs in (2, 4): save_config(preset("voc", **{**tiny_overrides(tiny), **fixed, "train.batch_size": bs}), d / f"cfg{bs}.json")
    runs = {"ddp": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(d / "run.py"),
                    str(d / "cfg2.json")],
            "one": [sys.executable, str(d / "run.py"), str(d / "cfg4.json")]}
    for name, cmd in runs.items():
        r = subprocess.run([*cmd, str(data), str(d / name)], env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    states = [json.loads((d / n / "checkpoints" / checkpoint_name(2) / "state.json").read_text()) for n in runs]
    assert [(s["world_size"], s["position"]) for s in states] == [(2, 8), (1, 8)]      # the same 8 items, two ways
    from glass.config import load_config
    from glass.testing import fixed_draws_glass
    w0 = fixed_draws_glass(load_config(d / "cfg4.json")).trainable_state_dict()
    w2, w1 = weights(d / "ddp", 2), weights(d / "one", 2)
    assert sorted(w0) == sorted(w1) == sorted(w2)
    assert max((w1[k] - w0[k]).abs().max().item() for k in w0) > 1e-4                 # the two steps moved the weights
    for k in w1: torch.testing.assert_close(w2[k], w1[k], rtol=0, atol=1e-5, msg=lambda m: f"{k}: {m}")   # a step is up to 1e-3
    ddp, one = read_log(d / "ddp"), read_log(d / "one")
    np.testing.assert_allclose([r["loss"] for r in ddp], [r["loss"] for r in one], rtol=1e-5)
