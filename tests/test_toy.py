"glass.toy: the rendered world, its captions, the toy text-to-image model (tiny and shipped)."
import colorsys, json
from pathlib import Path
import numpy as np
import pytest
import torch
from glass import toy
from glass.core import load_pretrained


def test_world_is_deterministic_and_masks_match_pixels():
    a, b = toy.render_split("val", 40, seed=1), toy.render_split("val", 40, seed=1)
    assert np.array_equal(a.images, b.images) and a.records == b.records
    assert not np.array_equal(a.images, toy.render_split("val", 40, seed=2).images)
    for i in range(40):
        r, inst, cls, im = a.records[i], a.instance[i], a.classes[i], a.images[i].astype(float)
        assert 1 <= len(r["objects"]) <= 3 and inst.max() == len(r["objects"])
        for k, o in enumerate(r["objects"], 1):
            assert set(np.unique(cls[inst == k])) == {toy.CLASSES.index(o) + 1}
            h = colorsys.rgb_to_hsv(*(np.median(im[inst == k], 0) / 255))[0]
            assert min(abs(h - toy.HUES[o]), 1 - abs(h - toy.HUES[o])) < 0.06   # each class has its own colour
        assert ((cls > 0) == (inst > 0)).all()


def test_captions_name_the_classes_the_way_glass_prompts_reads_them():
    from glass.prompts import extract_classes
    val, tr = toy.render_split("val", 200), toy.render_split("train", 200)
    vocab = ",".join(toy.CLASSES)
    for r in val.records: assert sorted(extract_classes(r["caption"], vocab)) == sorted(r["labels"]), r
    got = [sorted(extract_classes(r["caption"], vocab)) for r in tr.records]
    assert all(set(g) <= set(r["labels"]) and g for g, r in zip(got, tr.records))   # stand-in captions never invent
    miss = np.mean([g != sorted(r["labels"]) for g, r in zip(got, tr.records)])
    assert 0.05 < miss < 0.3                                                          # ... but sometimes miss a class


def test_tokenizer_keeps_words_whole_and_class_tokens_are_found():
    from glass.refine import class_token_indices
    tok = toy.toy_tokenizer()
    for w in toy.TOY_WORDS: assert len(tok.tokenize(w)) == 1, w
    assert class_token_indices(tok, ["triangle", "circle"]) == [[1], [2]]


def test_evaluate_reads_the_toy_split(tmp_path):
    from glass.evaluate import open_dataset, as_sample
    val = toy.render_split("val", 5)
    toy.save_split(val, tmp_path)
    for root in (tmp_path, None):
        ds = open_dataset("toy", root, "val")
        s = as_sample(ds[2], 2)
        assert np.array_equal(s.image, val.images[2]) and np.array_equal(s.instance, val.instance[2])


def test_colour_oracle_recovers_real_class_maps():
    val = toy.render_split("val", 100)
    seg = toy.colour_segmentation(val.images)
    for c in range(4):
        iou = ((seg == c) & (val.classes == c)).sum() / ((seg == c) | (val.classes == c)).sum()
        assert iou > 0.85, (c, iou)


@pytest.fixture(scope="module")
def tiny_toy(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "toy-sd"
    log = toy.pretrain(out, steps=3, n_scenes=64, vae_steps=2, batch_size=8, channels=(16, 32), progress=False)
    return out, log


def test_pretrain_writes_a_stable_diffusion_folder(tiny_toy):
    from diffusers import StableDiffusionPipeline
    out, log = tiny_toy
    pipe = load_pretrained(StableDiffusionPipeline, str(out), "toy SD")    # the loader that takes SD 2.1's hub id
    assert pipe.vae_scale_factor == 2 and pipe.unet.config.cross_attention_dim == 64
    assert json.loads((out / "train_log.json").read_text())["steps_done"] == 3 == len(log["rows"])
    assert (out / "loss.png").exists() and (out / "samples.png").exists()
    z = pipe.vae.encode(torch.zeros(1, 3, 32, 32)).latent_dist.mean
    assert z.shape == (1, 4, 16, 16)


def test_decoder_and_generate_take_the_toy_folder(tiny_toy, tmp_path):
    from glass.decoder import SlotDecoder
    from glass.core import preset
    from glass.generate import generate
    from glass.datasets import ShardDataset
    out, _ = tiny_toy
    dec = SlotDecoder(str(out), device="cpu", dtype=torch.float32)
    assert dec.resolution == 32 and dec.latent_channels == 4
    loss = dec.loss(torch.randn(2, 4, 16, 16), torch.randn(2, 4, 64, requires_grad=True))
    assert torch.isfinite(loss)
    val = toy.render_split("train", 4)
    toy.write_records(val, tmp_path / "in.jsonl")
    cfg = preset("toy", **{"decoder.model": str(out), "generate.steps": 2, "generate.refine_power": 0})
    generate(cfg, tmp_path / "in.jsonl", tmp_path / "gen", progress=False, cpu=True)
    ds = ShardDataset(tmp_path / "gen", encoder_resolution=32)
    assert len(ds) == 4 and ds[0]["latents"].shape == (4, 16, 16) and ds[0]["masks"].shape == (32, 32)


shipped = pytest.mark.skipif(not toy.has_toy_model(), reason="no shipped toy model in glass/assets/toy-sd")


@shipped
def test_shipped_model_is_small_and_logged():
    p = toy.toy_model_path()
    size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    assert size < 8e6, size
    log = json.loads((p / "train_log.json").read_text())
    assert log["steps_done"] > 0 and log["rows"][-1]["step"] == log["steps_done"]


@shipped
def test_shipped_model_draws_each_class_in_its_colour():
    pipe = toy.load_toy_pipeline()
    prompts = ["a circle", "a square", "a triangle"] * 4
    g = [torch.Generator().manual_seed(i) for i in range(len(prompts))]
    ims = pipe(prompts, num_inference_steps=20, guidance_scale=3.0, generator=g, output_type="np").images
    seg = toy.colour_segmentation((ims * 255).round().astype(np.uint8))
    for i, p in enumerate(prompts):
        want = toy.CLASSES.index(p.split()[-1]) + 1
        counts = np.bincount(seg[i].ravel(), minlength=4)[1:]
        assert counts.argmax() + 1 == want and counts.max() > 20, (p, counts)
