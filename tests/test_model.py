"GLASS: who gets gradients, the Stable-LSD baseline, the DINOSAUR-MLP variant, checkpoints, and overfitting one batch."
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from glass.model import GLASS, DinosaurMLPDecoder, matched_iou, load_glass
from glass.testing import tiny_config


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(2, 32, 32, dtype=torch.uint8)
    masks[:, 4:20, 4:20] = 1; masks[:, 20:] = 2; masks[:, 0] = 255
    return {"pixel_values": torch.randn(2, 3, 56, 56, generator=g), "latents": torch.randn(2, 4, 16, 16, generator=g), "masks": masks}


@pytest.fixture(scope="module")
def model(tiny):
    torch.manual_seed(0)
    return GLASS(tiny_config("coco"), device="cpu")


def test_only_slot_attention_and_projection_get_gradients(model, batch):
    model.zero_grad(set_to_none=True)
    out = model.training_step(batch)
    out["loss"].backward()
    trainable = {id(p) for p in model.trainable_parameters()}
    frozen = [p for p in model.parameters() if id(p) not in trainable]
    assert frozen and all(p.grad is None for p in frozen)
    assert all(p.grad is not None for p in model.slot_attention.parameters())
    assert all(p.grad is not None for p in model.projection.parameters())
    assert set(model.trainable_modules()) == {"slot_attention", "projection"}
    assert out["n_matched"] == 4
    assert out["loss"].item() == pytest.approx(out["mse"].item() + out["guidance"].item(), rel=1e-5)
    model.zero_grad(set_to_none=True)


def test_guidance_weight_zero_is_stable_lsd(tiny, batch):
    m = GLASS(tiny_config("stablelsd"), device="cpu")
    out = m.training_step(batch)
    assert out["guidance"].item() == 0.0 and out["n_matched"] == 0
    assert out["loss"].item() == out["mse"].item()


def test_guidance_weight_scales_the_guidance(tiny, batch):
    m = GLASS(tiny_config("coco", **{"guidance.weight": 2.5}), device="cpu")
    out = m.training_step(batch)
    assert out["loss"].item() == pytest.approx(out["mse"].item() + 2.5 * out["guidance"].item(), rel=1e-5)


def test_cached_features_equal_pixel_values(model, batch):
    feats = model.features(batch["pixel_values"])
    assert feats.shape == (2, 4, 4, 32)
    torch.manual_seed(3); a = model.training_step(batch)
    torch.manual_seed(3); b = model.training_step({**batch, "features": feats})
    assert a["loss"].item() == pytest.approx(b["loss"].item(), rel=1e-5)


def test_slot_masks_and_encode_slots(model, batch):
    enc = model.encode_slots(batch["pixel_values"])
    assert enc["slots"].shape == (2, 7, 32) and enc["slots_proj"].shape == (2, 7, model.decoder.cross_attention_dim)
    assert enc["masks"].shape == (2, 7, 4, 4)
    m = model.slot_masks(batch["pixel_values"], 32)
    assert m.shape == (2, 7, 32, 32)
    torch.testing.assert_close(m.sum(1), torch.ones(2, 32, 32))


def test_trainable_state_dict_round_trip(tiny, model, tmp_path):
    from glass.core import save_config
    from safetensors.torch import save_file
    sd = model.trainable_state_dict()
    assert all(k.split(".")[0] in ("slot_attention", "projection") for k in sd)
    fresh = GLASS(tiny_config("coco"), device="cpu").load_trainable_state_dict(sd)
    assert all(torch.equal(v, fresh.trainable_state_dict()[k]) for k, v in sd.items())
    with pytest.raises(RuntimeError, match="does not fit"):
        GLASS(tiny_config("coco", **{"slots.slot_size": 16}), device="cpu").load_trainable_state_dict(sd)
    save_config(model.cfg, tmp_path / "config.json")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "model.safetensors"))
    loaded = load_glass(tmp_path, device="cpu")
    assert torch.equal(loaded.slot_attention.slot_mu, model.slot_attention.slot_mu)
    with pytest.raises(FileNotFoundError, match="glass-train"):
        load_glass(tmp_path / "missing")


def test_dinosaur_mlp_trains_one_step(tiny, batch):
    m = GLASS(tiny_config("coco", **{"decoder.kind": "dinosaur-mlp"}), device="cpu")
    assert isinstance(m.decoder, DinosaurMLPDecoder)
    params = m.trainable_parameters()
    before = [p.detach().clone() for p in params]
    opt = torch.optim.Adam(params, lr=1e-3)
    out = m.training_step({"pixel_values": batch["pixel_values"], "masks": batch["masks"]})   # no latents needed
    out["loss"].backward()
    assert all(p.grad is not None for p in m.decoder.parameters())
    assert all(p.grad is None for p in m.encoder.parameters())
    opt.step()
    assert all(not torch.equal(a, p) for a, p in zip(before, params))
    assert out["n_matched"] == 4 and torch.isfinite(out["loss"])


def test_dinosaur_decoder_by_hand():
    torch.manual_seed(0)
    d = DinosaurMLPDecoder(slot_size=4, feature_dim=3, num_tokens=5, hidden=8, layers=2)
    s = torch.randn(1, 3, 4)
    with torch.no_grad():
        rec, alpha = d(s)
        outs = torch.stack([torch.stack([d.mlp(s[0, k] + d.pos[0, 0, n]) for n in range(5)]) for k in range(3)])  # (S,N,F+1)
        a = outs[..., -1].softmax(0)
        ref = (a[..., None] * outs[..., :-1]).sum(0)
    torch.testing.assert_close(alpha[0], a); torch.testing.assert_close(rec[0], ref)


def test_trainable_cnn_encoder_gets_gradients(tiny, batch):
    m = GLASS(tiny_config("toy", **{"encoder.resolution": 32}), device="cpu")
    out = m.training_step({"pixel_values": torch.randn(2, 3, 32, 32), "latents": batch["latents"], "masks": batch["masks"]})
    out["loss"].backward()
    assert "encoder" in m.trainable_modules()
    assert all(p.grad is not None for p in m.encoder.parameters())
    assert all(p.grad is None for p in m.decoder.parameters())


def test_bad_config_and_batch_errors(tiny, model, batch):
    with pytest.raises(ValueError, match="decoder.kind"):
        GLASS(tiny_config("coco", **{"decoder.kind": "transformer"}), device="cpu")
    with pytest.raises(KeyError, match="latents"):
        model.training_step({"pixel_values": batch["pixel_values"], "masks": batch["masks"]})
    with pytest.raises(ValueError, match="pixel_values"):
        model.encode_slots()


def test_overfitting_one_batch_binds_slots_to_segments(tiny):
    "200 Adam steps on one batch: the guidance loss falls by half and the matched IoU rises by 0.15 or more."
    torch.manual_seed(0)
    m = GLASS(tiny_config("coco", **{"encoder.resolution": 112, "slots.num_slots": 4}), device="cpu")
    size = 28
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    disc = lambda cy, cx, r: (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
    lab = torch.stack([torch.where(disc(9, 18, 6), 1, torch.where((xx >= 3) & (xx < 12) & (yy >= 14) & (yy < 25), 3, 2)),
                       torch.where(yy < 9, 3, torch.where(disc(18, 14, 7), 1, 2))]).to(torch.uint8)
    pal = torch.tensor([[0, 0, 0], [220, 60, 40], [40, 90, 200], [240, 200, 60]], dtype=torch.uint8)
    images = pal[lab.long()].permute(0, 3, 1, 2)
    big = F.interpolate(images.float() / 127.5 - 1, size=128, mode="nearest")
    b = {"features": m.features(m.preprocess(images)), "latents": m.decoder.encode(big), "masks": lab}

    def mean_iou(n=10):
        torch.manual_seed(0)
        return float(np.mean([matched_iou(m.slot_masks(features=b["features"]), lab) for _ in range(n)]))

    iou0 = mean_iou()
    torch.manual_seed(0)
    opt = torch.optim.Adam(m.trainable_parameters(), lr=1e-3)
    g = []
    for _ in range(200):
        out = m.training_step(b)
        opt.zero_grad(); out["loss"].backward(); opt.step()
        g.append(out["guidance"].item())
    iou1 = mean_iou()
    assert np.mean(g[-20:]) < 0.5 * np.mean(g[:10]), (np.mean(g[:10]), np.mean(g[-20:]))
    assert iou1 > iou0 + 0.15 and iou1 > 0.65, (iou0, iou1)


def test_matched_iou_by_hand():
    lab = torch.zeros(1, 4, 4, dtype=torch.uint8); lab[0, :, :2] = 1; lab[0, :, 2:] = 2; lab[0, 0, 0] = 255
    masks = torch.zeros(1, 2, 4, 4); masks[0, 0, :, :3] = 1; masks[0, 1, :, 3:] = 1
    # slot 0 covers columns 0-2 -> IoU with segment 1 (cols 0-1, one ignored pixel): 7/11; slot 1 (col 3) with segment 2: 4/8
    assert matched_iou(masks, lab) == pytest.approx((7 / 11 + 4 / 8) / 2)
