"The glass-caption command end to end: as a process, resumed after new images and after a kill, its errors and help."
import os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
from glass.captions import Blip2Captioner, main, caption_folder
from glass.io import read_jsonl

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "HF_HUB_OFFLINE": "1"}


def _images(folder, n=6):
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        a = np.random.RandomState(i).randint(0, 255, (30 + 3 * i, 40 - i, 3), dtype=np.uint8)
        Image.fromarray(a).save(folder / f"im{i:02d}.{'png' if i % 2 else 'jpg'}")
    return sorted(folder.iterdir())


class Counting:
    "The real captioner, counting the images it is asked for (and optionally failing after some batches)."
    def __init__(self, cap, fail_after=None): self.cap, self.n, self.batches, self.fail_after = cap, 0, 0, fail_after
    def caption_batch(self, images):
        if self.fail_after is not None and self.batches >= self.fail_after: raise KeyboardInterrupt("killed")
        self.batches += 1; self.n += len(images)
        return self.cap.caption_batch(images)


def test_caption_main_writes_and_resumes(tiny, tmp_path):
    paths = _images(tmp_path / "img")
    out = tmp_path / "caps.jsonl"
    argv = [str(tmp_path / "img"), "--out", str(out), "--model", str(tiny["blip2"]), "--batch-size", "4",
            "--max-new-tokens", "4", "--no-progress"]
    assert main(argv) is None
    recs = read_jsonl(out)
    assert [r["id"] for r in recs] == [p.stem for p in paths]
    assert all(set(r) == {"id", "image", "caption"} and Path(r["image"]) == p.resolve() for r, p in zip(recs, paths))
    assert not out.with_name(out.name + ".partial").exists()
    first = out.read_text()
    main(["--out", str(out), "--images", str(tmp_path / "img"), "--set", f"prompts.captioner={tiny['blip2']}",
                  "prompts.caption_batch_size=4", "--set", "prompts.vocab=voc", "--max-new-tokens", "4", "--no-progress"])
    assert out.read_text() == first                                      # same settings spelt with --set: nothing to do
    _images(tmp_path / "img", n=8)                                       # two new images
    cap = Counting(Blip2Captioner(str(tiny["blip2"]), max_new_tokens=4))
    caption_folder(tmp_path / "img", out, captioner=cap, batch_size=4, progress=False)
    assert cap.n == 2 and [r["id"] for r in read_jsonl(out)] == [f"im{i:02d}" for i in range(8)]
    assert out.read_text().startswith(first)


def test_caption_interrupted_then_resumed(tiny, tmp_path):
    _images(tmp_path / "img", n=7)
    out, partial = tmp_path / "caps.jsonl", tmp_path / "caps.jsonl.partial"
    base = Blip2Captioner(str(tiny["blip2"]), max_new_tokens=4)
    with pytest.raises(KeyboardInterrupt):
        caption_folder(tmp_path / "img", out, captioner=Counting(base, fail_after=2), batch_size=2, progress=False)
    assert not out.exists() and len(read_jsonl(partial)) == 4
    with open(partial, "a") as f: f.write('{"id": "im04", "ima')                 # a torn write at the kill
    cap = Counting(base)
    caption_folder(tmp_path / "img", out, captioner=cap, batch_size=2, progress=False)
    ids = [r["id"] for r in read_jsonl(out)]
    assert cap.n == 3 and sorted(ids) == [f"im{i:02d}" for i in range(7)] and len(ids) == len(set(ids))
    assert not partial.exists()
    ref = Blip2Captioner(str(tiny["blip2"]), batch_size=7, max_new_tokens=4)(sorted((tmp_path / "img").iterdir()))
    assert [r["caption"] for r in sorted(read_jsonl(out), key=lambda r: r["id"])] == ref


def test_caption_main_errors_and_help(tmp_path, capsys):
    with pytest.raises(SystemExit) as e: main([str(tmp_path / "nope"), "--out", str(tmp_path / "x.jsonl")])
    assert e.value.code == 2 and f"image folder {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as e: main([str(tmp_path / "empty"), "--out", str(tmp_path / "x.jsonl")])
    assert e.value.code == 2 and f"image folder {tmp_path / 'empty'} holds no image" in capsys.readouterr().err
    _images(tmp_path / "img", n=1)
    for bad, msg in ((["--set", "prompts.captioner=x", "prompts.captionr=y"], "did you mean prompts.captioner"),
                     (["--preset", "vocc"], "valid presets: voc, coco"), (["--set", "captioner"], "field.name=value"),
                     (["--images", str(tmp_path / "img")], "give the image folder once")):
        with pytest.raises(SystemExit) as e: main([str(tmp_path / "img"), "--out", str(tmp_path / "x.jsonl"), *bad])
        assert e.value.code == 2 and msg in capsys.readouterr().err, bad
    with pytest.raises(SystemExit) as e: main(["--out", str(tmp_path / "x.jsonl")])
    assert e.value.code == 2 and "give the image folder once" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e: main(["--out", "x", "--set", "prompts.vocab=voc", str(tmp_path / "img")])
    assert e.value.code == 2 and "must look like field.name=value" in capsys.readouterr().err   # FOLDER read by --set
    with pytest.raises(SystemExit) as e: main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in ["folder", "--images", "--out", "--model", "--batch-size", "--device", "--precision", "--max-new-tokens",
                "--num-beams", "--recursive", "--limit", "--no-progress", "--preset", "--set"]:
        assert opt in text, opt


def test_runs_as_a_process(tiny, tmp_path):
    paths = _images(tmp_path / "img", n=3)
    out = tmp_path / "caps.jsonl"
    r = subprocess.run([sys.executable, "-m", "glass.captions", str(tmp_path / "img"), "--out", str(out), "--model",
                        str(tiny["blip2"]), "--max-new-tokens", "3", "--no-progress"], env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert [x["id"] for x in read_jsonl(out)] == [p.stem for p in paths]
    r = subprocess.run([sys.executable, "-m", "glass.captions", str(tmp_path / "nope"), "--out", str(out)], env=ENV,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "glass-caption: error: image folder" in r.stderr and "Traceback" not in r.stderr
