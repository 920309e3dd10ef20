"The shard format contract between two commands: what glass.generate writes, glass.datasets reads (with a feature cache)."
import json
import pytest
from glass.datasets import ShardDataset
from glass.features import cache_features


@pytest.fixture(scope="module")
def enc(tiny):
    from glass.slots import DinoEncoder
    return DinoEncoder(str(tiny["dinov2"]), resolution=28)


def test_reads_what_glass_generate_writes(tmp_path, tiny, enc):
    "The format contract: a tiny glass.generate run read back by ShardDataset, with a feature cache."
    from glass.config import preset
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
