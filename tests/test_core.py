"""Unit tests of glass.config, glass.shards and glass.core not yet in their notebooks (00_config, 02_shards, 04_core,
whose owners move them there); the io test moved into nbs/01_io.ipynb."""
import json
import pytest
from glass.config import PRESETS, GlassConfig, preset, save_config, load_config, apply_overrides, parse_overrides, config_fields
from glass.shards import write_shard, read_shard
from glass.core import get_dtype


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_round_trip_json(name, tmp_path):
    cfg = preset(name)
    save_config(cfg, tmp_path / "cfg.json")
    assert load_config(tmp_path / "cfg.json") == cfg
    assert json.loads((tmp_path / "cfg.json").read_text())["name"] == cfg.name


def test_paper_values():
    voc, coco = preset("voc"), preset("coco")
    assert (voc.slots.num_slots, coco.slots.num_slots) == (6, 7)
    assert (voc.train.steps, coco.train.steps) == (250_000, 500_000)
    assert coco.train.lr == 2e-5 and coco.train.batch_size == 32 and coco.train.grad_clip == 1.0
    assert coco.encoder.resolution == 448 and coco.decoder.resolution == 256
    assert (coco.generate.fg_threshold, coco.generate.bg_threshold, coco.generate.refine_power) == (0.6, 0.5, 4)
    assert (coco.generate.steps, coco.generate.guidance_scale, coco.generate.resolution) == (100, 7.5, 512)
    assert preset("stablelsd").guidance.weight == 0 and preset("voc-dagger").prompts.source == "labels"


def test_misspelt_field_lists_valid_ones():
    with pytest.raises(KeyError) as e:
        preset("voc", **{"slots.num_slot": 3})
    assert "slots.num_slots" in str(e.value) and "train.lr" in str(e.value)
    with pytest.raises(ValueError, match="is float"):
        apply_overrides(GlassConfig(), {"train.lr": "fast"})
    with pytest.raises(ValueError, match="valid presets"):
        preset("nope")


def test_overrides_parse_types():
    cfg = apply_overrides(GlassConfig(), parse_overrides(["slots.iters=5", "train.cache_features=true", "train.lr=1e-4"]))
    assert cfg.slots.iters == 5 and cfg.train.cache_features is True and cfg.train.lr == 1e-4
    assert set(config_fields()) >= {"slots.iters", "guidance.weight", "generate.fg_threshold"}


def test_config_file_errors_name_the_file(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"slots": {"iterations": 3}}))
    with pytest.raises(KeyError, match="bad.json"):
        load_config(p)


def test_shard_round_trip_and_truncation(tmp_path):
    import torch
    t = {"images": torch.randint(0, 255, (3, 3, 8, 8), dtype=torch.uint8), "latents": torch.randn(3, 4, 1, 1)}
    write_shard(tmp_path / "s.safetensors", t, [{"id": i} for i in range(3)], {"rank": 0})
    got, items, extra = read_shard(tmp_path / "s.safetensors")
    assert torch.equal(got["images"], t["images"]) and [i["id"] for i in items] == [0, 1, 2] and extra == {"rank": 0}
    raw = (tmp_path / "s.safetensors").read_bytes()
    (tmp_path / "s.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="s.safetensors"):
        read_shard(tmp_path / "s.safetensors")
    with pytest.raises(ValueError, match="rows"):
        write_shard(tmp_path / "bad.safetensors", t, [{"id": 0}])
    assert not (tmp_path / "bad.safetensors").exists()


def test_dtype_helper():
    import torch
    assert get_dtype("fp16", "cpu") is torch.float32 and get_dtype("bf16", "cpu") is torch.bfloat16
    with pytest.raises(ValueError, match="valid"):
        get_dtype("fp8")
