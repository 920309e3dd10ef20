"The frozen Stable Diffusion decoder: loss targets worked by hand, gradients, sampling and editing."
import pytest
import torch
from glass.decoder import SlotDecoder, diffusion_target, drop_slots, fit_length


@pytest.fixture(scope="module")
def dec(tiny):
    return SlotDecoder(tiny["sd"], device="cpu")


@pytest.fixture(scope="module")
def dec_eps(tiny, tmp_path_factory):
    from glass.testing import tiny_sd_pipeline
    return SlotDecoder(tiny_sd_pipeline(tmp_path_factory.mktemp("eps") / "sd", prediction_type="epsilon"), device="cpu")


def _by_hand(d, x0, slots, t, eps, kind):
    "x_t, target and MSE from alpha_bar, independent of the scheduler's own helpers."
    a = d.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1).double()
    xt = a.sqrt() * x0.double() + (1 - a).sqrt() * eps.double()
    tgt = a.sqrt() * eps.double() - (1 - a).sqrt() * x0.double() if kind == "v" else eps.double()
    with torch.no_grad(): pred = d.unet(xt.float(), t, encoder_hidden_states=slots).sample.double()
    return tgt.float(), ((pred - tgt) ** 2).mean().item()


def test_properties(dec):
    assert dec.prediction_type == "v_prediction" and dec.cross_attention_dim == 32
    assert dec.latent_channels == 4 and dec.vae_scale_factor == 8 and dec.resolution == 128
    assert dec.dtype == torch.float32 and dec.num_train_timesteps == 1000


def test_v_prediction_target_and_loss_by_hand(dec):
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 4, 16, 16, generator=g), torch.randn(3, 4, 16, 16, generator=g)
    slots, t = torch.randn(3, 6, 32, generator=g), torch.tensor([0, 499, 999])
    tgt, ref = _by_hand(dec, x0, slots, t, eps, "v")
    torch.testing.assert_close(diffusion_target(dec.scheduler, x0, eps, t), tgt, atol=1e-5, rtol=1e-5)
    assert dec.loss(x0, slots, t=t, noise=eps).item() == pytest.approx(ref, rel=1e-5)


def test_epsilon_target_is_the_noise(dec_eps):
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(2, 4, 16, 16, generator=g), torch.randn(2, 4, 16, 16, generator=g)
    slots, t = torch.randn(2, 3, 32, generator=g), torch.tensor([5, 700])
    assert dec_eps.prediction_type == "epsilon"
    assert torch.equal(diffusion_target(dec_eps.scheduler, x0, eps, t), eps)
    _, ref = _by_hand(dec_eps, x0, slots, t, eps, "eps")
    assert dec_eps.loss(x0, slots, t=t, noise=eps).item() == pytest.approx(ref, rel=1e-5)


def test_gradient_reaches_slots_only(dec):
    slots = torch.randn(2, 4, 32, requires_grad=True)
    dec.loss(torch.randn(2, 4, 16, 16), slots, generator=torch.Generator().manual_seed(0)).backward()
    assert slots.grad is not None and slots.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in dec.parameters())
    dec.train()
    assert not dec.unet.training and not dec.vae.training


def test_loss_reproducible_and_checks_width(dec):
    x0, s = torch.randn(2, 4, 16, 16), torch.randn(2, 4, 32)
    a = dec.loss(x0, s, generator=torch.Generator().manual_seed(3)).item()
    assert a == dec.loss(x0, s, generator=torch.Generator().manual_seed(3)).item()
    with pytest.raises(ValueError, match="cross_attention_dim"):
        dec.loss(x0, torch.randn(2, 4, 8))


def test_reconstruct_and_edit_sizes(dec):
    s = torch.randn(2, 3, 32, generator=torch.Generator().manual_seed(0))
    rec = dec.reconstruct(s, steps=3, guidance_scale=2.0, seed=0)
    assert rec.shape == (2, 3, 128, 128) and rec.min() >= 0 and rec.max() <= 1
    assert torch.equal(rec, dec.reconstruct(s, steps=3, guidance_scale=2.0, seed=0))
    ed = dec.edit(s, drop=[1], steps=3, guidance_scale=2.0, seed=0)
    assert ed.shape == rec.shape and (ed - rec).abs().max() > 1e-4
    assert dec.reconstruct(s[:1], steps=2, height=64, width=32).shape == (1, 3, 64, 32)


def test_unconditional_matches_pipeline_empty_prompt(dec, tiny):
    from diffusers import StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(str(tiny["sd"]))
    for S in (2, 7, 77):   # (S = 1: the pipeline itself returns 2 tokens and fails to concatenate)
        _, neg = pipe.encode_prompt(None, "cpu", 1, True, prompt_embeds=torch.zeros(1, S, 32))
        torch.testing.assert_close(dec.unconditional(S), neg, atol=1e-5, rtol=1e-5)


def test_drop_and_fit_length():
    s = torch.arange(24.).view(2, 3, 4)
    d = drop_slots(s, [0])
    assert d[:, 0].abs().sum() == 0 and torch.equal(d[:, 1:], s[:, 1:]) and s[:, 0].abs().sum() > 0
    m = torch.tensor([[False, True, False], [False, False, False]])
    assert torch.equal(drop_slots(s, m)[1], s[1]) and drop_slots(s, m)[0, 1].abs().sum() == 0
    with pytest.raises(IndexError): drop_slots(s, [3])
    e = torch.arange(6.).view(1, 3, 2)
    assert torch.equal(fit_length(e, 2), e[:, :2])
    assert torch.equal(fit_length(e, 5)[:, 3:], e[:, 2:].expand(1, 2, 2))


def test_encode_is_scaled_posterior_mean(dec):
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    z = dec.encode(x)
    with torch.no_grad(): ref = dec.vae.encode(x).latent_dist.mean * dec.vae.config.scaling_factor
    torch.testing.assert_close(z, ref)
    assert dec.encode((x * 127.5 + 127.5).round().to(torch.uint8)).shape == (1, 4, 8, 8)


def test_missing_model_names_the_field():
    with pytest.raises(FileNotFoundError, match="decoder.model"):
        SlotDecoder("/nonexistent/sd", device="cpu")
