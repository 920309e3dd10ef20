"glass.slots: encoder input, encoders, slot attention (Eq. 1), projection."
import math
import pytest
import torch
from glass.core import preset
from glass.slots import (encoder_preprocess, DinoEncoder, CNNEncoder, build_encoder, SlotAttention, SlotProjection,
                         cartesian_grid, resize_masks, IMAGENET_MEAN, IMAGENET_STD)

torch.set_num_threads(1)


def _unnormalise(x):
    return x * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)


def test_preprocess_uint8_and_float_agree_and_crop_centre():
    img = torch.randint(0, 256, (2, 3, 10, 14), dtype=torch.uint8)
    a, b = encoder_preprocess(img, 10), encoder_preprocess(img.float() / 255, 10)
    assert a.shape == (2, 3, 10, 10) and a.dtype == torch.float32
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(_unnormalise(a), img[..., 2:12].float() / 255)   # width 14 -> columns 2..11
    assert encoder_preprocess(img, 448).shape == (2, 3, 448, 448)


def test_dino_encoder_grid_and_frozen(tiny):
    enc = DinoEncoder(str(tiny["dinov2"]), resolution=56)
    assert enc.grid == (4, 4) and sum(p.requires_grad for p in enc.parameters()) == 0
    x = encoder_preprocess(torch.rand(2, 3, 70, 56), 56)
    f = enc(x)
    assert f.shape == (2, 4, 4, enc.dim)
    with torch.no_grad():
        last = enc.model(pixel_values=x).last_hidden_state
    torch.testing.assert_close(f.reshape(2, 16, -1), last[:, 1:])              # CLS dropped, row-major grid
    enc.train()
    assert not enc.model.training
    assert DinoEncoder(str(tiny["dinov2"]), resolution=448)(torch.zeros(1, 3, 448, 448)).shape[1:3] == (32, 32)


def test_dino_encoder_bad_inputs(tiny):
    with pytest.raises(ValueError, match="patch size"):
        DinoEncoder(str(tiny["dinov2"]), resolution=50)
    with pytest.raises(FileNotFoundError, match="encoder.model"):
        DinoEncoder("/nonexistent/dinov2")


def test_cnn_encoder_and_build_encoder():
    cfg = preset("toy")
    enc = build_encoder(cfg.encoder)
    assert isinstance(enc, CNNEncoder) and enc.trainable and enc.grid == (16, 16) and enc.dim == 64
    assert enc(torch.randn(3, 3, 32, 32)).shape == (3, 16, 16, 64)
    cfg.encoder.kind = "resnet"
    with pytest.raises(ValueError, match="encoder.kind"):
        build_encoder(cfg.encoder)


def test_cartesian_grid_cell_centres():
    g = cartesian_grid(2, 4)
    torch.testing.assert_close(g[:, :, 0], torch.tensor([[.125, .375, .625, .875]] * 2))   # x along the width
    torch.testing.assert_close(g[:, :, 1], torch.tensor([[.25] * 4, [.75] * 4]))
    torch.testing.assert_close(g[..., 2:], 1 - g[..., :2])


def _sa(seed=0, **kw):
    torch.manual_seed(seed)
    args = dict(in_dim=6, num_slots=4, slot_size=10, iters=3, mlp_hidden=12, eps=1e-6) | kw
    return SlotAttention(**args)


def test_masks_sum_to_one_and_shapes():
    sa = _sa()
    slots, masks = sa(torch.randn(3, 5, 7, 6))
    assert slots.shape == (3, 4, 10) and masks.shape == (3, 4, 5, 7)
    torch.testing.assert_close(masks.sum(1), torch.ones(3, 5, 7))
    assert (masks >= 0).all()
    torch.testing.assert_close(resize_masks(masks, (11, 13)).sum(1), torch.ones(3, 11, 13))


def test_permuting_initial_slots_permutes_outputs():
    sa = _sa(1)
    f = torch.randn(2, 4, 4, 6)
    init = sa.init_slots(2, generator=torch.Generator().manual_seed(3))
    perm = torch.tensor([3, 1, 0, 2])
    s1, m1 = sa(f, init_slots=init)
    s2, m2 = sa(f, init_slots=init[:, perm])
    torch.testing.assert_close(s2, s1[:, perm])
    torch.testing.assert_close(m2, m1[:, perm])


def test_init_slots_shared_gaussian():
    sa = _sa(2, num_slots=3, slot_size=4)
    with torch.no_grad():
        sa.slot_mu.fill_(2.0); sa.slot_log_sigma.fill_(math.log(0.5))
    s = sa.init_slots(4000, generator=torch.Generator().manual_seed(0))
    assert s.shape == (4000, 3, 4)
    assert abs(s.mean().item() - 2.0) < 0.02 and abs(s.std().item() - 0.5) < 0.02
    assert sa.slot_mu.shape == (1, 1, 4)                                        # one mean for all slots


def test_one_iteration_equals_eq1_by_hand():
    "Eq. 1 recomputed with Python loops over inputs and slots from the module's own weights."
    sa = _sa(4, in_dim=3, num_slots=2, slot_size=3, iters=1, mlp_hidden=4, eps=1e-2).double()
    f = torch.randn(1, 2, 2, 3, dtype=torch.float64)
    init = torch.randn(1, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        slots, masks = sa(f, init_slots=init)
        # inputs: features + Linear(4->D)(x, y, 1-x, 1-y), then LayerNorm -> MLP -> LayerNorm
        pos = torch.tensor([[[.25, .25, .75, .75], [.75, .25, .25, .75]], [[.25, .75, .75, .25], [.75, .75, .25, .25]]],
                           dtype=torch.float64)
        x = f + sa.pos.proj(pos)
        x = sa.norm_inputs(sa.input_mlp(x)).reshape(4, 3)
        k, v = x @ sa.to_k.weight.T, x @ sa.to_v.weight.T                       # bias-free
        q = sa.norm_slots(init[0]) @ sa.to_q.weight.T
        A = [[0.0] * 2 for _ in range(4)]
        for i in range(4):
            e = [math.exp(sum(k[i, d].item() * q[j, d].item() for d in range(3)) / math.sqrt(3)) for j in range(2)]
            for j in range(2):
                A[i][j] = e[j] / sum(e)
        upd = torch.zeros(2, 3, dtype=torch.float64)
        for j in range(2):
            tot = sum(A[l][j] + 1e-2 for l in range(4))
            for i in range(4):
                upd[j] += (A[i][j] + 1e-2) / tot * v[i]
        ref = sa.gru(upd, init[0])
        ref = ref + sa.mlp(ref)
    torch.testing.assert_close(masks[0].reshape(2, 4).T, torch.tensor(A, dtype=torch.float64))
    torch.testing.assert_close(slots[0], ref)


def test_gradients_reach_every_parameter_and_projection():
    sa, proj = _sa(5), SlotProjection(10, 32)
    slots, masks = sa(torch.randn(2, 3, 3, 6))
    out = proj(slots)
    assert out.shape == (2, 4, 32)
    (out.pow(2).sum() + masks[:, 0].sum()).backward()
    assert [n for n, p in [*sa.named_parameters(), *proj.named_parameters()] if p.grad is None] == []


def test_from_config_and_errors():
    sa = SlotAttention.from_config(preset("coco-release").slots, in_dim=768)
    assert (sa.num_slots, sa.slot_size, sa.iters, sa.eps) == (7, 768, 5, 1e-6)
    assert SlotAttention.from_config(preset("voc").slots, 768).iters == 3
    sa = _sa()
    with pytest.raises(ValueError, match="expects features"):
        sa(torch.randn(2, 9, 6))
    with pytest.raises(ValueError, match="init_slots"):
        sa(torch.randn(2, 3, 3, 6), init_slots=torch.randn(2, 3, 10))


def test_masks_stay_float32_under_autocast():
    sa = _sa(6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        slots, masks = sa(torch.randn(2, 3, 3, 6).to(torch.bfloat16))
    assert masks.dtype == torch.float32
    torch.testing.assert_close(masks.sum(1), torch.ones(2, 3, 3))
