"""glass-demo as a console script: the quick run end to end, its report, and that guidance helps at that budget.
The metrics' shape, resuming and the --fresh refusal are tested once, on a tiny run, in nbs/97_toy_demo.ipynb."""
import json, os, signal, subprocess, sys, time
import pytest
import torch
from safetensors.torch import load_file
from glass.checkpoint import list_checkpoints
from glass.core import PORTABLE_CPU_KERNELS, portable_cpu_kernels
from glass.outputs import LOCK_NAME
from glass.toy import demo, model as toy_model

pytestmark = pytest.mark.xdist_group("demo")   # its module-scoped fixtures are built once, on one worker


def run_demo_process(args: list) -> None:
    """`glass-demo args` in a process of its own. The demo holds the CPU kernels of the process it runs in (the default
    `--kernels portable`), which a test worker could not undo: its later in-process tests would keep AVX2 while the
    processes they start pick their own paths."""
    env = {k: v for k, v in os.environ.items() if k not in PORTABLE_CPU_KERNELS}
    r = subprocess.run([sys.executable, "-m", "glass.toy.demo", *args], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]      # a console script: the exit status stays 0


@pytest.fixture(scope="module")
def model_args(tmp_path_factory):
    "The --model arguments of the tests: none with the shipped checkpoint, else a short pretraining (the numbers then say little)."
    if toy_model.has_toy_model(): return []
    model = tmp_path_factory.mktemp("toy") / "toy-sd"
    toy_model.pretrain(model, steps=150, n_scenes=2000, vae_steps=150, progress=False)
    return ["--model", str(model)]


@pytest.fixture(scope="module")
def quick(tmp_path_factory, model_args):
    out = tmp_path_factory.mktemp("demo") / "run"
    args = ["--quick", "--runs", "all", "--out", str(out), "--no-progress"] + model_args
    run_demo_process(args)
    return out, json.loads((out / "metrics.json").read_text())


def test_report_and_figures(quick):
    out, m = quick
    rep = (out / "report.md").read_text()
    for title in ("Unguided", "GLASS", "GLASS†", "GT-mask guidance", "GLASS + instance masks", "Scenes where a class repeats",
                  "Pseudo masks", "Stage times", "Departures", "The decoder path"):
        assert title in rep, title
    assert f"{m['pseudo_masks']['object_miou']:.3f}" in rep                  # the numbers come from the run
    assert f"{m['runs']['glass']['dinosaur']['mbo_i']:.3f}" in rep
    assert f"{m['runs']['glass_instances']['repeated']['dinosaur']['mbo_i']:.3f}" in rep
    for f in ("scenes", "generated", "slots", "losses", "instances", "reconstructions"): assert (out / "figures" / f"{f}.png").stat().st_size > 1000
    det = json.loads((out / "details.json").read_text())
    assert det["config"]["encoder"]["kind"] == "colour" and det["config"]["generate"]["refine_power"] == 0


def test_guidance_beats_reconstruction_alone(quick):
    _, m = quick
    for proto in ("dinosaur", "glass"):
        assert m["runs"]["glass"][proto]["mbo_i"] > m["runs"]["unguided"][proto]["mbo_i"], proto
        assert m["runs"]["gt_masks"][proto]["mbo_i"] > m["runs"]["unguided"][proto]["mbo_i"], proto


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as e: demo.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--out", "--quick", "--retrain", "--model", "--set", "--fresh", "--steps", "--minutes", "--runs", "--threads", "--kernels", "pretrain"):
        assert opt in text, opt


@pytest.mark.parametrize("args, says", [(["--set", "guidance.wieght=2"], "guidance.weight"),
                                         (["--set", "slots.num_slots=0"], "slots.num_slots must be >= 1"),
                                         (["--train-steps", "0"], "argument --train-steps: must be at least 1"),
                                         (["--runs", "glass,unguided,glass_dager"], "unknown demo run glass_dager"),
                                         (["--runs", "glass"], "add unguided to --runs")])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, says):
    with pytest.raises(SystemExit) as e:
        demo.main(["--quick", "--out", str(tmp_path / "x"), "--no-progress"] + args)
    err = capsys.readouterr().err.strip().splitlines()                 # a usage error: argparse's usage, then one line
    assert e.value.code == 2 and err[0].startswith("usage: glass-demo"), err
    assert [l for l in err if "error:" in l] == [err[-1]] and err[-1].startswith("glass-demo: error: ") and says in err[-1], err
    assert not (tmp_path / "x").exists()


def _wait_for(cond, what: str, proc=None, limit: float = 600.0):
    t0 = time.time()
    while not cond():
        assert proc is None or proc.poll() is None, f"the demo ended before {what}"
        assert time.time() - t0 < limit, f"no {what} after {limit:.0f} s"
        time.sleep(0.5)


def _session_processes(sid: int) -> list:
    "The pids of the live processes of session `sid` (Linux /proc)."
    out = []
    for stat in os.listdir("/proc"):
        try: fields = open(f"/proc/{stat}/stat").read().rsplit(")", 1)[1].split()
        except (OSError, IndexError): continue
        if stat.isdigit() and int(fields[3]) == sid and fields[0] != "Z": out.append(int(stat))
    return out


def test_a_killed_demo_leaves_no_run_training_and_resumes_exactly(tmp_path, model_args):
    """kill -9 of the demo while its runs train in their own processes: every run stops and frees its folder (the
    workers follow their parent), and a rerun resumes every run and finishes it with the weights of the same run trained
    without a stop, on the same generated data, in a fresh process."""
    out, args = tmp_path / "k", ["--quick", "--out", str(tmp_path / "k"), "--no-progress"] + model_args
    p = subprocess.Popen([sys.executable, "-m", "glass.toy.demo", *args], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    logs = [out / "runs" / r / "log.jsonl" for r in demo.DEFAULT_RUNS]
    _wait_for(lambda: any(f.exists() for f in logs), "training run", p)
    os.kill(p.pid, signal.SIGKILL); p.wait()
    locks = [out / "runs" / r / LOCK_NAME for r in demo.DEFAULT_RUNS]
    _wait_for(lambda: not any(f.exists() for f in locks), "free run folders", limit=120)
    stopped = {r: int(c.name.split("-")[-1]) for r in demo.DEFAULT_RUNS for c in list_checkpoints(out / "runs" / r)[-1:]}
    assert stopped and max(stopped.values()) < demo.SIZES["quick"].train_steps, stopped   # stopped, not finished as orphans
    resumed = max(stopped, key=stopped.get)                   # a run that the rerun continues from a checkpoint
    _wait_for(lambda: not _session_processes(p.pid), "end of the run processes", limit=demo.ORPHAN_GRACE_S + 60)
    run_demo_process(args)                               # the rerun resumes each run from its checkpoint and finishes it
    m = json.loads((out / "metrics.json").read_text())
    for r in demo.DEFAULT_RUNS:
        test_steps = int(list_checkpoints(out / "runs" / r)[-1].name.split("-")[-1])
        assert test_steps == demo.SIZES["quick"].train_steps, (r, test_steps)
        assert set(m["runs"][r]) >= {"dinosaur", "glass", "repeated", "reconstruction"}, r
    run, ref = out / "runs" / resumed, tmp_path / "ref"
    train_alone = ("import sys, torch; torch.set_num_threads(1); from glass.config import load_config; "
                   "from glass.train import train; train(load_config(sys.argv[1]), sys.argv[2], sys.argv[3], "
                   "progress=False, log_with=None, cpu=True)")
    data = out / "gen" / demo.RUNS[resumed]["data"]
    env = dict(os.environ); portable_cpu_kernels(env)        # the demo's own --kernels portable, as its runs computed
    subprocess.run([sys.executable, "-c", train_alone, str(run / "config.json"), str(data), str(ref)], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    a, b = (load_file(str(list_checkpoints(f)[-1] / "model.safetensors")) for f in (run, ref))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), (resumed, stopped, "the resumed weights differ")
