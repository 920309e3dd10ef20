"Guards for the exported glass.data package: shards, feature cache, VOC/COCO readers, evaluation transforms."
from pathlib import Path
import json
import numpy as np
import pytest
import torch
from glass.core import read_shard, write_shard
from glass.data import (ShardDataset, write_test_shards, cache_features, verify_features, cache_features_main,
                        resize_label_map, VOCReader, COCOReader, write_tiny_voc, write_tiny_coco, eval_transform,
                        EvalDataset, eval_reader, label_records)


@pytest.fixture
def gen(tmp_path):
    return write_test_shards(tmp_path / "gen", n_items=9, per_shard=4, resolution=28)


@pytest.fixture(scope="module")
def enc(tiny):
    from glass.slots import DinoEncoder
    return DinoEncoder(str(tiny["dinov2"]), resolution=28)


def test_items_are_the_stored_rows(gen):
    ds = ShardDataset(gen, encoder_resolution=28, mask_resolution=14)
    assert len(ds) == 9 and ds.resolution == 28 and ds.latent_shape == (4, 4, 4)
    t, items, _ = read_shard(gen / "shard-000002.safetensors")
    it = ds[8]
    assert torch.equal(it["image"], t["images"][0]) and torch.equal(it["latents"], t["latents"][0].float())
    # nearest-exact 28 -> 14 picks pixel centres 2i+1 (scale 2: floor((i + 0.5) * 2) = 2i + 1)
    assert torch.equal(it["masks"], t["masks"][0][1::2, 1::2])
    assert it["id"] == 8 and it["classes"] == items[0]["classes"] and it["pixel_values"].shape == (3, 28, 28)
    assert set(torch.unique(it["masks"]).tolist()) <= {0, 1, 2, 3, 255}
    b = ShardDataset.collate([ds[i] for i in range(4)])
    assert b["latents"].shape == (4, 4, 4, 4) and b["index"].tolist() == [0, 1, 2, 3]
    assert [len(c) for c in b["classes"]] == [1, 2, 3, 1]


def test_works_in_a_dataloader_with_workers(gen):
    ds = ShardDataset(gen, 28)
    dl = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, collate_fn=ShardDataset.collate)
    ids = [i for b in dl for i in b["id"]]
    assert ids == list(range(9))


def test_shard_problems_name_the_file(tmp_path):
    d = write_test_shards(tmp_path / "a", n_items=8, per_shard=4)
    p = d / "shard-000001.safetensors"
    p.write_bytes(p.read_bytes()[:-64])
    with pytest.raises(ValueError, match="shard-000001.safetensors is unreadable or truncated"):
        ShardDataset(d, 28)
    p.unlink()
    with pytest.raises(FileNotFoundError, match="shard-000001.safetensors does not exist"):
        ShardDataset(d, 28)
    d = write_test_shards(tmp_path / "b", n_items=8, per_shard=4)
    t, it, ex = read_shard(d / "shard-000000.safetensors")
    t["masks"] = torch.nn.functional.pad(t["masks"], (0, 2, 0, 2)).contiguous()
    write_shard(d / "shard-000000.safetensors", t, it, ex)
    with pytest.raises(ValueError, match="shard-000000.safetensors: masks are 34x34 but images are 32x32"):
        ShardDataset(d, 28)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ShardDataset(tmp_path / "nowhere", 28)


def test_bad_item_is_never_returned(tmp_path):
    d = write_test_shards(tmp_path / "a", n_items=4, per_shard=4)
    t, it, ex = read_shard(d / "shard-000000.safetensors")
    t["latents"][3, 0, 0, 0] = float("nan")
    write_shard(d / "shard-000000.safetensors", t, it, ex)
    ds = ShardDataset(d, 28)
    ds[2]
    with pytest.raises(ValueError, match="row 3 .*latent is not finite"):
        ds[3]


def test_cached_features_equal_the_encoder(gen, enc):
    ref = ShardDataset(gen, 28)
    out = cache_features(gen, enc, batch_size=4, dtype="fp32", progress=False)
    ds = ShardDataset(gen, 28)
    assert ds.features_dir == out and "pixel_values" not in ds[0]
    with torch.no_grad():
        for i in range(len(ds)):
            torch.testing.assert_close(ds[i]["features"], enc(ref[i]["pixel_values"][None])[0], atol=1e-5, rtol=1e-5)
    assert verify_features(gen, enc, n=9) < 1e-5
    assert ShardDataset(gen, 28, features=False).features_dir is None


def test_feature_cache_must_match(gen, enc):
    cache_features(gen, enc, batch_size=4, dtype="fp16", progress=False)
    t, it, ex = read_shard(gen / "shard-000001.safetensors")
    it[0]["id"] = 99
    write_shard(gen / "shard-000001.safetensors", t, it, ex)          # regenerated shard: ids differ
    with pytest.raises(ValueError, match="shard-000001.safetensors was made for other items"):
        ShardDataset(gen, 28, features=True)
    with pytest.warns(UserWarning, match="on the fly"):
        assert ShardDataset(gen, 28).features_dir is None
    cache_features(gen, enc, batch_size=4, progress=False)              # resumes: rebuilds that file only
    assert ShardDataset(gen, 28, features=True)[4]["features"].dtype == torch.float32


def test_cli(gen, tiny, capsys):
    with pytest.raises(SystemExit):
        cache_features_main(["--help"])
    h = capsys.readouterr().out
    for opt in ("--preset", "--set", "--data", "--out", "--batch-size", "--device", "--dtype", "--overwrite", "--check"):
        assert opt in h
    assert cache_features_main(["--preset", "voc", "--data", str(gen), "--device", "cpu", "--set",
                                f"encoder.model={tiny['dinov2']}", "--set", "encoder.resolution=28", "--check", "2"]) is None
    assert (gen / "features" / "shard-000002.safetensors").exists()
    with pytest.raises(SystemExit):
        cache_features_main(["--preset", "toy", "--data", str(gen)])     # trainable CNN: nothing to cache
    with pytest.raises(SystemExit):
        cache_features_main(["--preset", "voc", "--data", str(gen.parent / "missing")])
    assert "does not exist" in capsys.readouterr().err


def test_voc_reader_maps(tmp_path):
    voc = VOCReader(write_tiny_voc(tmp_path))
    s = voc[0]
    assert s.id == "2007_000001" and s.image.shape == (48, 64, 3)
    # instance ids as painted; the 255 border is void: 0 in both maps and True in ignore
    assert sorted(np.unique(s.instance).tolist()) == [0, 1, 2, 3]
    assert sorted(np.unique(s.classes).tolist()) == [0, 8, 15]
    assert s.ignore.sum() == 20 * 20 - 16 * 16 and not s.ignore[8:24, 4:20].any()
    assert (s.classes[s.instance == 2] == 8).all() and (s.classes[s.instance == 3] == 8).all()   # two cats
    assert (voc[1].instance == 1).all() and (voc[1].classes == 12).all()
    with pytest.raises(FileNotFoundError, match="Expected layout"):
        VOCReader(tmp_path / "missing")


def test_label_records_agree_with_prompts_ids(tmp_path):
    "GLASS† labels from the class maps: VOC ids 1..20 are glass.prompts' ids; COCO class maps are 1..80, not category ids."
    from glass.prompts import labels_to_classes, class_ids
    voc = VOCReader(write_tiny_voc(tmp_path / "voc"))
    assert [(r["id"], r["labels"]) for r in label_records(voc)] == [("2007_000001", ["cat", "person"]), ("2007_000002", ["dog"])]
    assert voc.image_labels(0) == [8, 15] and labels_to_classes(voc.image_labels(0), "voc") == ["cat", "person"]
    assert class_ids(["cat", "person"], "voc") == [8, 15] and voc.class_names[8 - 1] == "cat"
    coco = COCOReader(write_tiny_coco(tmp_path / "coco"))
    recs = label_records(coco)
    assert [(r["id"], r["labels"]) for r in recs] == [(1, ["car", "dog"]), (2, [])] and Path(recs[0]["image"]).exists()
    assert coco.image_labels(0) == [2, 3] and coco.category_ids == (1, 3, 18)
    assert labels_to_classes([coco.category_ids[k - 1] for k in coco.image_labels(0)], "coco") == ["car", "dog"]
    assert class_ids(["car", "dog"], "coco") == [3, 18]


def test_coco_reader_maps(tmp_path):
    coco = eval_reader("coco", write_tiny_coco(tmp_path))
    s = coco[0]
    assert coco.class_names == ("person", "car", "dog")
    dog = np.zeros((30, 40), bool); dog[5:15, 5:20] = True
    car = np.zeros((30, 40), bool); car[10:25, 15:35] = True
    assert (s.instance == np.where(car, 2, np.where(dog, 1, 0))).all()      # last annotation wins
    assert (s.classes == np.where(car, 2, np.where(dog, 3, 0))).all()
    assert (s.overlap == (dog & car)).all() and s.overlap.sum() == 5 * 5
    assert s.instance[0:5, 0:10].max() == 0 and s.instance[26:].max() == 0   # crowd and ignore -> background
    assert coco[1].instance.max() == 0 and not coco[1].ignore.any()
    (tmp_path / "annotations" / "instances_val2017.json").unlink()
    with pytest.raises(FileNotFoundError, match="instances_val2017.json"):
        COCOReader(tmp_path)


def test_eval_transforms(tmp_path):
    coco = COCOReader(write_tiny_coco(tmp_path))
    s = coco[0]                                                     # 30 x 40
    g = eval_transform(s, "glass", encoder_resolution=14, mask_size=15)
    # authors': s = 0.5 -> 15 x 20, crop cols (20-15)//2 = 2; cv2-style nearest takes source pixel 2*i
    assert torch.equal(g["instance"], torch.from_numpy(s.instance[::2, ::2][:, 2:17]).long())
    assert not g["ignore"].any()
    d = eval_transform(s, "dinosaur", encoder_resolution=14, mask_size=15)
    # DINOSAUR: 15 x int(15*40/30)=20, crop round(2.5)=2; nearest-exact takes source pixel 2*i+1
    assert torch.equal(d["instance"], torch.from_numpy(s.instance[1::2, 1::2][:, 2:17]).long())
    assert torch.equal(d["ignore"], torch.from_numpy(s.overlap[1::2, 1::2][:, 2:17]))
    assert d["pixel_values"].shape == (3, 14, 14) and d["image"].dtype == torch.uint8
    ev = EvalDataset(coco, "glass", encoder_resolution=14)
    assert ev[1]["instance"].shape == (256, 256)


def test_resize_label_map_keeps_labels():
    m = torch.randint(0, 4, (8, 8), dtype=torch.uint8); m[0] = 255
    r = resize_label_map(m, 5)
    assert set(r.unique().tolist()) <= set(m.unique().tolist()) and r.dtype == torch.uint8


def test_reads_what_glass_generate_writes(tmp_path, tiny, enc):
    "The format contract: a tiny glass.generate run read back by ShardDataset, with a feature cache."
    from glass.core import preset
    from glass.generate import generate, load_pipeline
    small = {"generate.resolution": 128, "generate.steps": 2, "generate.cross_res": 8, "generate.self_res": 16,
             "generate.train_resolution": 64, "generate.items_per_shard": 2, "generate.batch_size": 3,
             "generate.precision": "fp32", "decoder.model": str(tiny["sd"])}
    cfg = preset("coco", **small)
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": i, "caption": c}) + "\n"
                           for i, c in enumerate(["a dog next to a red car", "a cat on a chair", "a bus on the street"])))
    generate(cfg, inp, tmp_path / "gen", pipe=load_pipeline(cfg, "cpu"), progress=False, sheet=0)
    ds = ShardDataset(tmp_path / "gen", encoder_resolution=28, mask_resolution=16)
    assert len(ds) == 3 and ds.resolution == 64 and ds.latent_shape == (4, 8, 8)
    it = ds[2]
    assert it["id"] == 2 and it["classes"] == ["bus"] and it["masks"].shape == (16, 16) and it["pixel_values"].shape == (3, 28, 28)
    cache_features(tmp_path / "gen", enc, batch_size=2, dtype="fp32", progress=False)
    assert ShardDataset(tmp_path / "gen", 28, features=True)[1]["features"].shape == (2, 2, enc.dim)
