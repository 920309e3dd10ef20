"The toy world end to end: a tiny pretrained toy model loads as the frozen decoder and drives glass-generate."
import pytest
import torch
from glass.toy import model as toy_model, world


@pytest.fixture(scope="module")
def tiny_toy(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "toy-sd"
    log = toy_model.pretrain(out, steps=3, n_scenes=64, vae_steps=2, batch_size=8, channels=(16, 32), progress=False)
    return out, log


def test_decoder_and_generate_take_the_toy_folder(tiny_toy, tmp_path):
    from glass.decoder import SlotDecoder
    from glass.config import preset
    from glass.generate import generate
    from glass.datasets import ShardDataset
    out, _ = tiny_toy
    dec = SlotDecoder(str(out), device="cpu", dtype=torch.float32)
    assert dec.resolution == 32 and dec.latent_channels == 4
    loss = dec.loss(torch.randn(2, 4, 16, 16), torch.randn(2, 4, 64, requires_grad=True))
    assert torch.isfinite(loss)
    val = world.render_split("train", 4)
    world.write_records(val, tmp_path / "in.jsonl")
    cfg = preset("toy", **{"decoder.model": str(out), "generate.steps": 2, "generate.refine_power": 0})
    generate(cfg, tmp_path / "in.jsonl", tmp_path / "gen", progress=False, cpu=True)
    ds = ShardDataset(tmp_path / "gen", encoder_resolution=32)
    assert len(ds) == 4 and ds[0]["latents"].shape == (4, 16, 16) and ds[0]["masks"].shape == (32, 32)
