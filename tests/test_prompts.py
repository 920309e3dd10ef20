"glass.prompts: vocabularies, class nouns (data-free rules always; the NLTK tagger when installed), prompts, captions."
import json, logging, os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import torch

from glass import prompts as P
from glass.prompts import (COCO_CLASSES, COCO_CATEGORY_IDS, VOC_CLASSES, vocabulary, class_names, pluralize,
                           extract_classes, make_prompt, class_prompt, labels_to_classes, class_ids, noun_method,
                           tagger_available, Blip2Captioner, caption_main, caption_folder, read_jsonl)


def rules(caption, vocab="coco"):
    return extract_classes(caption, vocab, method="rules")


needs_tagger = pytest.mark.skipif(not tagger_available(), reason="NLTK resource averaged_perceptron_tagger_eng is not "
                                  "installed (it cannot be downloaded without network); the tagger path is untested here")


# --- vocabularies -------------------------------------------------------------------------------------------------

def test_vocabulary_sizes_and_ids():
    assert len(COCO_CLASSES) == len(set(COCO_CLASSES)) == 80 and len(VOC_CLASSES) == 20
    missing = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}          # the ten unused COCO category ids
    assert COCO_CATEGORY_IDS == tuple(i for i in range(1, 91) if i not in missing)
    assert dict(zip(COCO_CATEGORY_IDS, COCO_CLASSES))[90] == "toothbrush"
    assert VOC_CLASSES.index("person") + 1 == 15 and VOC_CLASSES.index("tvmonitor") + 1 == 20
    assert set(vocabulary("coco").values()) == set(COCO_CLASSES)
    assert set(vocabulary("voc").values()) == set(VOC_CLASSES)


def test_pluralize():
    cases = {"dog": "dogs", "bus": "buses", "puppy": "puppies", "toy": "toys", "knife": "knives", "man": "men",
             "person": "people", "child": "children", "mouse": "mice", "sheep": "sheep", "skis": "skis",
             "scissors": "scissors", "hot dog": "hot dogs", "wine glass": "wine glasses", "couch": "couches",
             "box": "boxes", "hair drier": "hair driers", "toothbrush": "toothbrushes", "teddy bear": "teddy bears"}
    assert {k: pluralize(k) for k in cases} == cases


@pytest.mark.parametrize("vocab", ["coco", "voc"])
def test_every_form_is_found_in_context(vocab):
    "Brute force: every surface form of the vocabulary, in four sentence frames, yields exactly its class."
    for form, cls in vocabulary(vocab).items():
        for frame in ("{} in a photo", "a photo of {} here", "two {}"):
            assert rules(frame.format(form), vocab) == [cls], (frame.format(form), cls)
        want = ["person"] if cls == "person" else ["person", cls]
        assert rules(f"a man with {form} on a street", vocab) == want, (form, cls)


def test_custom_vocab_and_errors():
    assert class_names("circle, square ,Triangle") == ("circle", "square", "triangle")
    assert class_names(["dog", "Dog", "cat"]) == ("dog", "cat")
    assert rules("a red circle and two blue squares", "circle,square,triangle") == ["circle", "square"]
    v = vocabulary(["dog", "circle"])
    assert v["puppies"] == "dog" and v["circles"] == "circle" and "cat" not in v
    assert vocabulary(["person", "man"])["man"] == "man" and vocabulary(["person", "man"])["woman"] == "person"
    with pytest.raises(ValueError, match="neither 'coco' nor 'voc'"): rules("a dog", "cocoo")
    with pytest.raises(ValueError, match="no class name"): class_names([" ", ""])


# --- class nouns --------------------------------------------------------------------------------------------------

def test_plurals_and_synonyms():
    assert rules("two men and three women walking their dogs past some bikes") == ["person", "dog", "bicycle"]
    assert rules("a girl and her puppy on a sofa watching television") == ["person", "dog", "couch", "tv"]
    assert rules("kids, a guy, a lady, a player, a skier and a surfer") == ["person"]
    assert rules("a jet, an aeroplane and a plane near a motorbike") == ["airplane", "motorcycle"]
    assert rules("a kitten next to a computer monitor") == ["cat", "tv"]


def test_multi_word_classes():
    assert rules("hot dogs, a cell phone and teddy bears on a dining table") == \
        ["hot dog", "cell phone", "teddy bear", "dining table"]
    assert rules("a traffic light, fire hydrants, a stop sign and parking meters") == \
        ["traffic light", "fire hydrant", "stop sign", "parking meter"]
    assert rules("baseball bats, tennis rackets, wine glasses, potted plants and a hair drier") == \
        ["baseball bat", "tennis racket", "wine glass", "potted plant", "hair drier"]
    assert rules("a hot-dog and a teddy bear") == ["hot dog", "teddy bear"]      # hyphen, and no `bear`
    assert rules("a microwave oven above a toilet bowl") == ["microwave", "toilet"]


def test_words_that_are_not_nouns_in_context():
    assert rules("a dog sitting on a bench") == ["dog", "bench"]
    assert rules("a dog on a hot day") == ["dog"]
    assert rules("a man holding a hot dog") == ["person", "hot dog"]
    assert rules("an orange cat") == ["cat"]
    assert rules("an orange and white cat next to an orange") == ["cat", "orange"]
    assert rules("an orange on a plate") == ["orange"] and rules("orange slices") == ["orange"]
    assert rules("a glass of orange juice") == []
    assert rules("a man playing tennis") == ["person"]
    assert rules("kids playing baseball") == ["person"]
    assert rules("a baseball player swinging a bat at a ball") == ["person", "baseball bat", "sports ball"]
    assert rules("a remote control") == ["remote"]
    assert rules("a woman trying to train a dog") == ["person", "dog"]
    assert rules("a man ties his tie") == ["person", "tie"]
    assert rules("people waiting at a train station") == ["person"]
    assert rules("people waiting at a train station for the train") == ["person", "train"]
    assert rules("a bus at a bus stop") == ["bus"] and rules("cars stop at a light") == ["car"]
    assert rules("a dog next to a train") == ["dog", "train"]


def test_order_of_first_mention_and_dedup():
    assert rules("a dog, a cat, another dog and a man with his dog") == ["dog", "cat", "person"]
    assert rules("a puppy and a dog and dogs") == ["dog"]
    assert rules("A Man With A Dog.") == ["person", "dog"]
    assert rules("nothing to see here") == [] and rules("") == []


def test_voc_vs_coco():
    c = "an airplane above a motorcycle, a truck and a couch next to a tv and a hot dog"
    assert rules(c, "coco") == ["airplane", "motorcycle", "truck", "couch", "tv", "hot dog"]
    assert rules(c, "voc") == ["aeroplane", "motorbike", "sofa", "tvmonitor"]   # no truck; `hot dog` is no dog
    assert rules("a table with a potted plant", "voc") == ["diningtable", "pottedplant"]


# --- which path -----------------------------------------------------------------------------------------------------

def test_path_is_logged_once(caplog):
    P._announced.clear()
    with caplog.at_level(logging.INFO, logger="glass.prompts"):
        for _ in range(3): extract_classes("a dog", method="rules")
    msgs = [r.getMessage() for r in caplog.records if r.name == "glass.prompts"]
    assert len(msgs) == 1 and "data-free rules" in msgs[0]


def test_method_selection(monkeypatch):
    monkeypatch.setenv("GLASS_NOUN_METHOD", "rules")
    assert noun_method("auto") == "rules" and noun_method(None) == "rules"
    monkeypatch.setenv("GLASS_NOUN_METHOD", "bogus")
    with pytest.raises(ValueError, match="GLASS_NOUN_METHOD"): noun_method("auto")
    monkeypatch.delenv("GLASS_NOUN_METHOD")
    assert noun_method("auto") == ("tagger" if tagger_available() else "rules")


def test_never_downloads(monkeypatch):
    import nltk
    def boom(*a, **k): raise AssertionError("nltk.download must never be called")
    monkeypatch.setattr(nltk, "download", boom)
    monkeypatch.delenv("GLASS_NOUN_METHOD", raising=False)
    assert extract_classes("a woman with a dog") == ["person", "dog"]


@pytest.mark.skipif(tagger_available(), reason="the tagger resource is installed here")
def test_tagger_missing_is_a_clear_error():
    with pytest.raises(LookupError, match="averaged_perceptron_tagger_eng"): extract_classes("a dog", method="tagger")


@needs_tagger
def test_tagger_path():
    T = lambda c, v="coco": extract_classes(c, v, method="tagger")
    assert T("a woman running down a road with a dog") == ["person", "dog"]
    assert T("two cats sleeping on a couch next to a laptop") == ["cat", "couch", "laptop"]
    assert T("a man holding a hot dog") == ["person", "hot dog"]
    assert T("a man playing tennis with a tennis racket") == ["person", "tennis racket"]
    assert T("an airplane flying over a boat", "voc") == ["aeroplane", "boat"]


# --- prompts and labels ------------------------------------------------------------------------------------------

def test_prompts():
    assert make_prompt("a woman running down a road with a dog", ["person", "dog"]) == \
        "a woman running down a road with a dog; person dog"
    assert make_prompt("  a   cat ", []) == "a cat"
    assert class_prompt(["person", "hot dog"]) == "person hot dog" and class_prompt("dog") == "dog"
    c = "two kids eating hot dogs"
    assert make_prompt(c, extract_classes(c, method="rules")) == "two kids eating hot dogs; person hot dog"


def test_labels_to_classes():
    assert labels_to_classes([15, 12, 0, 255, 15], "voc") == ["person", "dog"]
    assert labels_to_classes(torch.tensor([0, 1, 20]), "voc") == ["aeroplane", "tvmonitor"]
    assert labels_to_classes(np.array([1, 18, 90]), "coco") == ["person", "dog", "toothbrush"]
    assert labels_to_classes(["aeroplane", "man", "sofa"], "coco") == ["airplane", "person", "couch"]
    assert labels_to_classes(["airplane", "tv monitor"], "voc") == ["aeroplane", "tvmonitor"]
    assert labels_to_classes([2, 1], "circle,square") == ["square", "circle"]
    with pytest.raises(ValueError, match="label id 12"): labels_to_classes([12], "coco")
    with pytest.raises(ValueError, match="truck"): labels_to_classes(["truck"], "voc")
    assert class_ids(VOC_CLASSES, "voc") == list(range(1, 21))
    assert class_ids(COCO_CLASSES, "coco") == list(COCO_CATEGORY_IDS)
    assert labels_to_classes(class_ids(["dog", "person"], "voc"), "voc") == ["dog", "person"]


# --- captions ----------------------------------------------------------------------------------------------------

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


def test_captioner_batching_is_invariant(tiny, tmp_path):
    paths = _images(tmp_path / "img")
    cap = Blip2Captioner(str(tiny["blip2"]), batch_size=1, max_new_tokens=5)
    assert cap.device.type in ("cpu", "cuda", "mps") and cap.dtype == (torch.float16 if cap.device.type == "cuda" else torch.float32)
    one = cap(paths)
    cap.batch_size = 4
    assert cap(paths) == one and len(one) == 6 and all(isinstance(c, str) for c in one)
    from PIL import Image
    assert cap([Image.open(p) for p in paths[:2]]) == one[:2]            # PIL images as well as paths
    assert cap(np.asarray(Image.open(paths[0]))[None].repeat(2, 0)) == [one[0]] * 2   # (B,H,W,3) uint8 array


def test_captioner_dtype(tiny):
    cap = Blip2Captioner(str(tiny["blip2"]), device="cpu", dtype=torch.bfloat16, max_new_tokens=3)
    assert cap.dtype == torch.bfloat16
    assert {p.dtype for p in cap.model.language_model.parameters()} == {torch.bfloat16}
    assert len(cap([np.zeros((20, 30, 3), np.uint8)] * 3)) == 3
    assert Blip2Captioner(str(tiny["blip2"]), device="cpu", dtype="fp16").dtype == torch.float32   # CPU: fp16 -> fp32
    with pytest.raises(ValueError, match="batch_size"): Blip2Captioner(str(tiny["blip2"]), batch_size=0)


def test_caption_main_writes_and_resumes(tiny, tmp_path):
    paths = _images(tmp_path / "img")
    out = tmp_path / "caps.jsonl"
    argv = [str(tmp_path / "img"), "--out", str(out), "--model", str(tiny["blip2"]), "--batch-size", "4",
            "--max-new-tokens", "4", "--no-progress"]
    assert caption_main(argv) is None
    recs = read_jsonl(out)
    assert [r["id"] for r in recs] == [p.stem for p in paths]
    assert all(set(r) == {"id", "image", "caption"} and Path(r["image"]) == p.resolve() for r, p in zip(recs, paths))
    assert not out.with_name(out.name + ".partial").exists()
    first = out.read_text()
    caption_main(["--out", str(out), "--images", str(tmp_path / "img"), "--set", f"prompts.captioner={tiny['blip2']}",
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
    with pytest.raises(SystemExit) as e: caption_main([str(tmp_path / "nope"), "--out", str(tmp_path / "x.jsonl")])
    assert e.value.code == 2 and f"image folder {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as e: caption_main([str(tmp_path / "empty"), "--out", str(tmp_path / "x.jsonl")])
    assert e.value.code == 2 and f"image folder {tmp_path / 'empty'} holds no image" in capsys.readouterr().err
    _images(tmp_path / "img", n=1)
    for bad, msg in ((["--set", "prompts.captioner=x", "prompts.captionr=y"], "did you mean prompts.captioner"),
                     (["--preset", "vocc"], "valid presets: voc, coco"), (["--set", "captioner"], "field.name=value"),
                     (["--images", str(tmp_path / "img")], "give the image folder once")):
        with pytest.raises(SystemExit) as e: caption_main([str(tmp_path / "img"), "--out", str(tmp_path / "x.jsonl"), *bad])
        assert e.value.code == 2 and msg in capsys.readouterr().err, bad
    with pytest.raises(SystemExit) as e: caption_main(["--out", str(tmp_path / "x.jsonl")])
    assert e.value.code == 2 and "give the image folder once" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e: caption_main(["--out", "x", "--set", "prompts.vocab=voc", str(tmp_path / "img")])
    assert e.value.code == 2 and "must look like field.name=value" in capsys.readouterr().err   # FOLDER read by --set
    with pytest.raises(SystemExit) as e: caption_main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in ["folder", "--images", "--out", "--model", "--batch-size", "--device", "--precision", "--max-new-tokens",
                "--num-beams", "--recursive", "--limit", "--no-progress", "--preset", "--set"]:
        assert opt in text, opt


def test_offline_hub_id_names_the_field():
    from glass.core import hub_reachable
    if hub_reachable(): pytest.skip("the model hub is reachable from here")
    with pytest.raises(OSError, match="prompts.captioner"): Blip2Captioner("Salesforce/blip2-opt-2.7b")


def test_voc_devkit_names_read_as_words_in_prompts():
    from glass.prompts import make_prompt, class_prompt
    assert make_prompt("a tv on a table", ["tvmonitor", "diningtable"]) == "a tv on a table; tv monitor dining table"
    assert class_prompt(["pottedplant", "dog"]) == "potted plant dog"
