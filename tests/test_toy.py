"The toy world end to end: a tiny pretrained toy model loads as the frozen decoder and drives glass-generate."
import math
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
    T, s0, k = 1000, 0.008, toy_model.NOISE_SHIFT        # the folder's schedule: the toy's cosine one with its SNR divided by k^2
    f = lambda t: math.cos((t / T + s0) / (1 + s0) * math.pi / 2) ** 2
    shifted = lambda ab: (ab / (1 - ab) / k ** 2) / (1 + ab / (1 - ab) / k ** 2)      # SNR / k^2 back to alpha-bar
    for t in (0, 250, 500, 900): assert abs(dec.scheduler.alphas_cumprod[t].item() - shifted(f(t + 1) / f(0))) < 1e-5, t
    assert dec.prediction_type == "v_prediction"
    g = torch.Generator().manual_seed(0)
    x0, slots, eps, t = (torch.randn(2, 4, 16, 16, generator=g), torch.randn(2, 4, 64, generator=g),
                         torch.randn(2, 4, 16, 16, generator=g), torch.tensor([30, 700]))
    a = dec.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    with torch.no_grad(): pred = dec.unet(a.sqrt() * x0 + (1 - a).sqrt() * eps, t, encoder_hidden_states=slots).sample
    by_hand = ((pred - (a.sqrt() * eps - (1 - a).sqrt() * x0)) ** 2).mean()      # v-prediction's MSE (Eq. 2)
    assert abs(dec.loss(x0, slots, t=t, noise=eps).item() - by_hand.item()) < 1e-6
    val = world.render_split("train", 4)
    world.write_records(val, tmp_path / "in.jsonl")
    cfg = preset("toy", **{"decoder.model": str(out), "generate.steps": 2, "generate.refine_power": 0})
    generate(cfg, tmp_path / "in.jsonl", tmp_path / "gen", progress=False, cpu=True)
    ds = ShardDataset(tmp_path / "gen", encoder_resolution=32)
    assert len(ds) == 4 and ds[0]["latents"].shape == (4, 16, 16) and ds[0]["masks"].shape == (32, 32)
