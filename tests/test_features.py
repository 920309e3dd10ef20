"The glass-cache-features command as a process: it caches, checks, and refuses what it cannot cache in one line."
import math, os, subprocess, sys
from pathlib import Path
import pytest
from glass.testing import write_test_shards
from glass.datasets import ShardDataset

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "HF_HUB_OFFLINE": "1",
       "OMP_NUM_THREADS": "1"}


def _run(*args):
    return subprocess.run([sys.executable, "-m", "glass.features", *args], env=ENV, capture_output=True, text=True, timeout=300)


def test_cache_features_as_a_process(tiny, tmp_path):
    gen = write_test_shards(tmp_path / "gen", n_items=9, per_shard=4, resolution=28)
    r = _run("--preset", "voc", "--data", str(gen), "--device", "cpu", "--set", f"encoder.model={tiny['dinov2']}",
             "--set", "encoder.resolution=28", "--check", "2")
    assert r.returncode == 0, r.stderr
    err = float(r.stdout.split("largest |cached - on-the-fly| over 2 items: ")[1].split()[0])
    from safetensors.torch import load_file
    top = max(load_file(str(f))["features"].float().abs().max().item() for f in (gen / "features").iterdir())
    half_ulp = 2.0 ** (math.floor(math.log2(top)) - 11)            # fp16 rounding of a value below `top`: at most half its step
    assert 0 <= err <= half_ulp * 1.001, (err, top, r.stdout)   # the cache is the on-the-fly features, rounded once
    assert sorted(p.name for p in (gen / "features").iterdir()) == [f"shard-{i:06d}.safetensors" for i in range(3)]
    assert ShardDataset(gen, 28, features=True).features_dir == gen / "features"
    r = _run("--preset", "toy", "--data", str(gen))                       # a toy encoder: nothing to cache
    assert r.returncode == 2 and "only a frozen DINOv2 encoder" in r.stderr and "Traceback" not in r.stderr
    r = _run("--preset", "voc", "--data", str(tmp_path / "missing"))
    assert r.returncode == 2 and "glass-cache-features: error:" in r.stderr and "does not exist" in r.stderr
