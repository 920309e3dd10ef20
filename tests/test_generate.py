"glass.generate / glass-generate: shards, resume after SIGKILL, two processes, bad input, --help."
import json, os, signal, socket, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
import torch
from glass.core import preset, read_shard
from glass.generate import (main, build_parser, config_from_args, generate, generate_batch, load_pipeline, make_item, read_records,
                            my_shards, shard_ids)

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


@pytest.fixture(scope="module")
def cfg(tiny):
    return preset("coco", **SMALL, **{"decoder.model": str(tiny["sd"])})


@pytest.fixture(scope="module")
def pipe(cfg):
    return load_pipeline(cfg, "cpu")


def test_in_process_run_and_resume(tmp_path, cfg, pipe):
    inp = _write(tmp_path/"in.jsonl", 5)
    s = generate(cfg, inp, tmp_path/"out", pipe=pipe, progress=False, sheet=4)
    assert s["complete"] and s["shards_written"] == 3 and Path(s["contact_sheet"]).exists()
    assert _ids(tmp_path/"out") == [0, 1, 2, 3, 4]
    t, items, _ = read_shard(tmp_path/"out"/"shard-000002.safetensors")
    assert t["images"].shape == (1, 3, 64, 64) and t["images"].dtype == torch.uint8
    assert t["latents"].shape == (1, 4, 8, 8) and t["latents"].dtype == torch.float16
    assert t["masks"].shape == (1, 64, 64) and set(np.unique(t["masks"].numpy())) <= {0, 1, 2, 255}
    assert items == [{"id": 4, "prompt": "a bird near a horse; bird horse", "caption": "a bird near a horse",
                      "classes": ["bird", "horse"], "seed": 4}]
    man = json.loads((tmp_path/"out"/"manifest.json").read_text())
    assert man["num_items"] == 5 and [e["items"] for e in man["shards"]] == [2, 2, 1]
    cfgj = json.loads((tmp_path/"out"/"config.json").read_text())
    assert cfgj["generate"]["steps"] == 2
    # resume: nothing to do; a deleted shard is regenerated identically
    assert generate(cfg, inp, tmp_path/"out", pipe=pipe, progress=False)["shards_written"] == 0
    (tmp_path/"out"/"shard-000002.safetensors").unlink()
    assert generate(cfg, inp, tmp_path/"out", pipe=pipe, progress=False)["shards_written"] == 1
    t2, _, _ = read_shard(tmp_path/"out"/"shard-000002.safetensors")
    assert all(torch.equal(t[k], t2[k]) for k in t)
    # other settings refuse to resume; a changed input is detected
    with pytest.raises(ValueError, match="generate.steps: 2 -> 3"):
        generate(preset("coco", **{**SMALL, "generate.steps": 3, "decoder.model": cfg.decoder.model}), inp,
                 tmp_path/"out", pipe=pipe)
    (tmp_path/"in2.jsonl").write_text("".join(json.dumps({"id": 10 + i, "caption": "a dog"}) + "\n" for i in range(5)))
    with pytest.raises(ValueError, match="input file changed"):
        generate(cfg, tmp_path/"in2.jsonl", tmp_path/"out", pipe=pipe)


def test_caption_without_class_nouns(cfg, pipe):
    "Many real captions name no class of the vocabulary: the item is kept, its mask is all background."
    items = [make_item({"id": i, "caption": c}, i, cfg) for i, c in enumerate(["a view of the street", CAPS[0]])]
    assert items[0]["classes"] == [] and items[0]["prompt"] == "a view of the street"
    out = generate_batch(pipe, items, cfg.generate)
    assert out["masks"].shape == (2, 64, 64) and (out["masks"][0] == 0).all()


def test_seeds_are_per_item(cfg, pipe):
    items = [make_item({"id": i, "caption": c}, i, cfg) for i, c in enumerate(CAPS[:2])]
    both = generate_batch(pipe, items, cfg.generate)
    alone = generate_batch(pipe, items[1:], cfg.generate)
    assert (both["images"][1].int() - alone["images"][0].int()).abs().max() <= 1
    assert (both["images"][0].int() - both["images"][1].int()).abs().max() > 10


@pytest.mark.parametrize("over", [{"cross_res": 16, "self_res": 16, "upsample_mode": "bilinear"},   # toy world: equal
                                  {"cross_res": 8, "self_res": 0}, {"cross_res": 16, "self_res": 8, "refine_power": 0}])
def test_resolution_settings(cfg, pipe, over):
    g = preset("coco", **{**SMALL, **{f"generate.{k}": v for k, v in over.items()}}).generate
    items = [make_item({"id": 0, "caption": CAPS[0]}, 0, cfg)]
    out = generate_batch(pipe, items, g)
    assert out["masks"].shape == (1, 64, 64) and set(np.unique(out["masks"].numpy())) <= {0, 1, 2, 255}


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


def test_bad_input_names_file_and_line(tmp_path, capsys):
    bad = tmp_path/"bad.jsonl"
    bad.write_text('{"id": 0, "caption": "a dog"}\n\n{"id": 1, "caption": "a cat"\n')
    with pytest.raises(SystemExit):
        main(["--input", str(bad), "--out", str(tmp_path/"o")])
    assert f"{bad}:3" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--input", str(tmp_path/"missing.jsonl"), "--out", str(tmp_path/"o")])
    assert "missing.jsonl does not exist" in capsys.readouterr().err
    (tmp_path/"nocap.jsonl").write_text('{"id": 0}\n')
    with pytest.raises(ValueError, match="nocap.jsonl:1.*caption"):
        read_records(tmp_path/"nocap.jsonl")
    (tmp_path/"empty.jsonl").write_text('{"id": 0, "caption": "a dog"}\n{"id": 1, "caption": "  "}\n{"id": 2, "caption": "a cat"}\n')
    with pytest.warns(UserWarning, match=r"skipped 1 record\(s\) with an empty caption \(line 2\)"):
        assert [r["id"] for r in read_records(tmp_path/"empty.jsonl")] == [0, 2]   # what glass-caption may write
    assert [r["id"] for r in read_records(tmp_path/"empty.jsonl", limit=1)] == [0]
    (tmp_path/"nolab.jsonl").write_text('{"id": 0, "labels": []}\n{"id": 1, "labels": ["dog"]}\n')
    with pytest.warns(UserWarning, match=r"skipped 1 record\(s\) with no labels and no caption \(line 1\)"):
        assert [r["id"] for r in read_records(tmp_path/"nolab.jsonl", "labels")] == [1]
    (tmp_path/"lab.jsonl").write_text('{"id": 0, "labels": "dog"}\n')
    with pytest.raises(ValueError, match="lab.jsonl:1.*labels"):
        read_records(tmp_path/"lab.jsonl", "labels")
    (tmp_path/"dup.jsonl").write_text('{"id": 3, "caption": "a"}\n{"id": 3, "caption": "b"}\n')
    with pytest.raises(ValueError, match="dup.jsonl:2.*repeats line 1"):
        read_records(tmp_path/"dup.jsonl")
    assert not (tmp_path/"o").exists()


def test_labels_source_and_help(tmp_path):
    (tmp_path/"l.jsonl").write_text('{"id": "x", "caption": "a photo", "labels": ["dogs", 3]}\n{"id": "y", "labels": ["sofa"]}\n')
    c = preset("coco-dagger")
    items = [make_item(r, i, c) for i, r in enumerate(read_records(tmp_path/"l.jsonl", "labels"))]
    assert [it["classes"] for it in items] == [["dog", "car"], ["couch"]]
    assert [it["prompt"] for it in items] == ["a photo; dog car", "couch"]
    help_text = build_parser().format_help()
    for opt in ("--input", "--out", "--preset", "--config", "--set", "--steps", "--guidance-scale", "--batch-size",
                "--items-per-shard", "--train-resolution", "--limit", "--contact-sheet", "--source", "--model"):
        assert opt in help_text
    a = build_parser().parse_args(["-i", "x", "-o", "y", "--preset", "voc", "--steps", "7", "--model", "/m", "--set",
                                   "generate.steps=9", "generate.cross_res=8", "--set", "generate.self_res=16"])
    c = config_from_args(a)                                             # preset, then the options, then --set
    assert (c.name, c.generate.steps, c.decoder.model, c.generate.cross_res, c.generate.self_res) == ("voc", 9, "/m", 8, 16)
    assert config_from_args(build_parser().parse_args(["-i", "x", "-o", "y"])).generate.steps == preset("coco").generate.steps
    assert my_shards(7, 2, 1, 3) == [1] and my_shards(7, 2, 0, 3) == [0, 3]
    assert shard_ids(tmp_path/"none.safetensors") is None
