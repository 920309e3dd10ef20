"glass-generate as processes: resume after SIGKILL, two processes splitting the shards (unit tests: nbs/35_generate.ipynb)."
import json, os, signal, socket, subprocess, sys, time
from pathlib import Path
import pytest
from glass.shards import read_shard

CAPS = ["a dog next to a red car", "a cat on a chair", "a man and a dog on the road", "a bus on the street",
        "a bird near a horse", "a woman sitting on a couch"]
SMALL = {"generate.resolution": 128, "generate.steps": 2, "generate.cross_res": 8, "generate.self_res": 16,
         "generate.train_resolution": 64, "generate.items_per_shard": 2, "generate.batch_size": 2, "generate.precision": "fp32"}


def _write(path, n):
    path.write_text("".join(json.dumps({"id": i, "caption": CAPS[i % len(CAPS)]}) + "\n" for i in range(n)))
    return path


def _ids(folder):
    return [it["id"] for f in sorted(Path(folder).glob("shard-*.safetensors")) for it in read_shard(f, keys=["masks"])[1]]


def _cli(tiny, inp, out):
    sets = [a for k, v in {**SMALL, "decoder.model": str(tiny["sd"])}.items() for a in ("--set", f"{k}={v}")]
    return [sys.executable, "-m", "glass.generate", "--input", str(inp), "--out", str(out), "--no-progress", "--cpu",
            "--contact-sheet", "0", *sets]


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def test_sigkill_then_rerun_exactly_once(tmp_path, tiny):
    inp, out = _write(tmp_path/"in.jsonl", 12), tmp_path/"out"
    proc = subprocess.Popen(_cli(tiny, inp, out), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.time()
    while not list(out.glob("shard-*.safetensors")) and proc.poll() is None and time.time() - t0 < 300:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = len(list(out.glob("shard-*.safetensors")))
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert 1 <= at_kill < 6 and not (out/"manifest.json").exists()
    r = subprocess.run(_cli(tiny, inp, out), env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"skipped {at_kill} complete" in r.stdout
    ids = _ids(out)
    assert sorted(ids) == list(range(12)) and len(ids) == len(set(ids))
    assert json.loads((out/"manifest.json").read_text())["complete"]
    assert not list(out.glob(".*.tmp"))


def test_two_processes_split_without_overlap(tmp_path, tiny):
    inp, out = _write(tmp_path/"in.jsonl", 11), tmp_path/"out"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    procs = [subprocess.Popen(_cli(tiny, inp, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**ENV, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2",
                                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}) for r in (0, 1)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs[0][-1500:] + errs[1][-1500:]
    by_rank = {}
    for f in sorted(out.glob("shard-*.safetensors")):
        _, items, extra = read_shard(f, keys=["masks"])
        assert extra["rank"] == int(f.stem.split("-")[1]) % 2 and extra["num_processes"] == 2
        by_rank.setdefault(extra["rank"], []).extend(it["id"] for it in items)
    assert set(by_rank[0]) & set(by_rank[1]) == set()
    assert sorted(by_rank[0] + by_rank[1]) == list(range(11))
    assert sorted(by_rank[1]) == [2, 3, 6, 7, 10]                  # shards 1, 3 and 5
    man = json.loads((out/"manifest.json").read_text())
    assert man["complete"] and sum(e["items"] for e in man["shards"]) == 11



def test_kernels_are_recorded_and_a_resume_on_other_kernels_says_so(tmp_path, tiny):
    "`--kernels portable` shards name the AVX2 paths; a rerun on the native paths keeps them, says so, and names its own."
    import platform
    from glass.core import PORTABLE_CPU_KERNELS
    inp, out = _write(tmp_path/"in.jsonl", 4), tmp_path/"out"
    env = {k: v for k, v in ENV.items() if k not in PORTABLE_CPU_KERNELS}      # the native paths, whatever pytest holds
    kernels = lambda s: read_shard(out/f"shard-00000{s}.safetensors", keys=["masks"])[2]["cpu_kernels"]
    r = subprocess.run(_cli(tiny, inp, out) + ["--kernels", "portable"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    portable = kernels(0)
    assert kernels(1) == portable
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert portable == "AVX2 kernels; MKL_CBWR=AVX2, ONEDNN_MAX_CPU_ISA=AVX2", portable
    (out/"shard-000001.safetensors").unlink(); (out/"manifest.json").unlink()
    r = subprocess.run(_cli(tiny, inp, out), env=env, capture_output=True, text=True)    # the default: native
    assert r.returncode == 0, r.stderr[-2000:]
    native = kernels(1)
    assert kernels(0) == portable and "MKL_CBWR" not in native, native
    assert f"were computed with {portable}, this process computes with {native}" in r.stdout, r.stdout
