"glass.guidance: IoU matrix, Hungarian matching (Eq. 3) and the BCE guidance loss (Eq. 4)."
import itertools, math
import numpy as np
import pytest
import torch
from glass.guidance import iou_matrix, hungarian_match, label_map_to_segments, guidance_loss, match_label_maps

torch.set_num_threads(1)


def _iou_by_count(x, y, keep):
    u = ((x | y) & keep).sum()
    return (x & y & keep).sum() / u if u else 0.0


def test_iou_matrix_against_pixel_counts():
    rng = np.random.default_rng(0)
    a, b, ign = rng.random((4, 6, 5)) < .5, rng.random((3, 6, 5)) < .3, rng.random((6, 5)) < .25
    b[2] = False                                                     # an empty mask: IoU 0, not NaN
    ref = np.array([[_iou_by_count(x, y, ~ign) for y in b] for x in a])
    np.testing.assert_allclose(iou_matrix(a, b, ign), ref, rtol=1e-6)
    t = iou_matrix(torch.tensor(a), torch.tensor(b), torch.tensor(ign))
    assert torch.is_tensor(t) and t.shape == (4, 3)
    np.testing.assert_allclose(t.numpy(), ref, rtol=1e-6)
    assert iou_matrix(a, b).shape == (4, 3)


def _best_total(iou):
    S, F = iou.shape
    if S >= F:
        return max(sum(iou[p[j], j] for j in range(F)) for p in itertools.permutations(range(S), F))
    return max(sum(iou[i, p[i]] for i in range(S)) for p in itertools.permutations(range(F), S))


@pytest.mark.parametrize("seed", range(3))
def test_hungarian_equals_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    for S in range(1, 8):
        for F in range(1, 8):
            soft = torch.tensor(rng.dirichlet(np.ones(S), size=(8, 8)), dtype=torch.float32).permute(2, 0, 1)
            segs = rng.random((F, 8, 8)) < rng.uniform(.1, .6, (F, 1, 1))
            ign = rng.random((8, 8)) < .1 if seed else None
            keep = ~ign if ign is not None else np.ones((8, 8), bool)
            hard = soft.argmax(0).numpy()[None] == np.arange(S)[:, None, None]
            iou = np.array([[_iou_by_count(h, g, keep) for g in segs] for h in hard], dtype=np.float64)
            si, fi = hungarian_match(soft, segs, ign)
            assert si.dtype == fi.dtype == torch.long and len(si) == len(fi) == min(S, F)
            assert len(set(si.tolist())) == len(si) and len(set(fi.tolist())) == len(fi)
            assert iou[si.numpy(), fi.numpy()].sum() == pytest.approx(_best_total(iou), abs=1e-6), (S, F)


def test_hungarian_hard_masks_and_no_segments():
    hard = torch.zeros(3, 2, 2, dtype=torch.bool)
    hard[0, 0, 0] = hard[1, 0, 1] = hard[2, 1] = True
    segs = torch.stack([hard[2], hard[0] | hard[1]])
    si, fi = hungarian_match(hard, segs)
    assert si.tolist() == [0, 2] and fi.tolist() == [1, 0]
    si, fi = hungarian_match(hard.float(), torch.zeros(0, 2, 2, dtype=torch.bool))
    assert si.numel() == fi.numel() == 0


def test_label_map_to_segments():
    lab = torch.tensor([[0, 3, 3], [255, 1, 0]], dtype=torch.uint8)
    segs, ign = label_map_to_segments(lab)
    assert segs.dtype == torch.bool and segs.shape == (2, 2, 3)
    assert torch.equal(segs[0], lab == 1) and torch.equal(segs[1], lab == 3) and torch.equal(ign, lab == 255)
    s_np, i_np = label_map_to_segments(lab.numpy())
    assert isinstance(s_np, np.ndarray) and (s_np == segs.numpy()).all()


def test_batched_matching_agrees_with_hungarian_match():
    rng = np.random.default_rng(7)
    for _ in range(10):
        B, S = 3, int(rng.integers(1, 8))
        m = torch.tensor(rng.dirichlet(np.ones(S), size=(B, 10, 10)), dtype=torch.float32).permute(0, 3, 1, 2)
        lab = rng.integers(0, int(rng.integers(1, 10)), (B, 10, 10)).astype(np.uint8)
        lab[rng.random(lab.shape) < .1] = 255
        bi, si, vi, ious = match_label_maps(m, torch.tensor(lab))
        for b in range(B):
            segs, ign = label_map_to_segments(lab[b])
            s_ref, f_ref = hungarian_match(m[b], segs, ign)
            keep = ~ign
            hard = m[b].argmax(0).numpy()[None] == np.arange(S)[:, None, None]
            vals = sorted(set(np.unique(lab[b]).tolist()) - {0, 255})
            iou = np.array([[_iou_by_count(h, g, keep) for g in segs] for h in hard])
            sel = (bi == b).numpy()
            assert sel.sum() == len(s_ref) == min(S, len(vals))
            got = [iou[s, vals.index(v)] for s, v in zip(si[sel].tolist(), vi[sel].tolist())]
            np.testing.assert_allclose(got, ious[sel].numpy(), rtol=1e-5)
            assert sum(got) == pytest.approx(iou[s_ref.numpy(), f_ref.numpy()].sum(), abs=1e-6)


def test_guidance_loss_by_hand_and_ignore():
    # one image, 3 slots, 2x3 pixels; labels: segment 4 on the left column, segment 7 top-right, 255 bottom-right
    p = torch.tensor([[[.7, .1, .2], [.6, .3, .1]],        # slot 0: wins the left column
                      [[.2, .8, .1], [.3, .5, .2]],        # slot 1: wins the middle column
                      [[.1, .1, .7], [.1, .2, .7]]])       # slot 2: wins the right column
    masks = p[None].clone().requires_grad_()
    labels = torch.tensor([[[4, 0, 7], [4, 0, 255]]], dtype=torch.uint8)
    loss, n = guidance_loss(masks, labels)
    # matching: slot 0 <-> 4 (IoU 1), slot 2 <-> 7 (IoU 1, pixel (1,2) ignored); slot 1 unmatched
    L = math.log
    bce0 = -(L(.7) + L(1 - .1) + L(1 - .2) + L(.6) + L(1 - .3)) / 5
    bce2 = -(L(1 - .1) + L(1 - .1) + L(.7) + L(1 - .1) + L(1 - .2)) / 5
    assert n == 2
    assert loss.item() == pytest.approx((bce0 + bce2) / 2, rel=1e-6)
    loss.backward()
    assert torch.count_nonzero(masks.grad[0, 1]) == 0               # unmatched slot
    assert torch.count_nonzero(masks.grad[0, :, 1, 2]) == 0         # ignored pixel
    other = p.clone(); other[:, 1, 2] = torch.tensor([.0, .0, 1.0])  # change only the ignored pixel (argmax kept)
    assert guidance_loss(other[None], labels)[0].item() == pytest.approx(loss.item(), rel=1e-6)


def test_zero_segments_zero_loss_zero_grad():
    masks = torch.rand(3, 4, 5, 5).softmax(1).requires_grad_()
    labels = torch.zeros(3, 5, 5, dtype=torch.uint8); labels[1, :2] = 255
    loss, n = guidance_loss(masks, labels)
    assert n == 0 and loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(masks.grad, torch.zeros_like(masks))


def test_more_segments_than_slots_drops_the_rest():
    labels = torch.tensor([[[1, 1, 2, 2, 3]]], dtype=torch.uint8)
    m = torch.tensor([.9, .6, .2, .3, .4])
    masks = torch.stack([m, 1 - m])[None, :, None]                  # slot 0 wins pixels 0-1, slot 1 pixels 2-4
    loss, n = guidance_loss(masks, labels)
    # slot 0 <-> segment 1 (IoU 1); slot 1 <-> segment 2 (IoU 2/3, not segment 3 with 1/3); segment 3 dropped
    L = math.log
    bce0 = -(L(.9) + L(.6) + L(1 - .2) + L(1 - .3) + L(1 - .4)) / 5
    bce1 = -(L(1 - .1) + L(1 - .4) + L(.8) + L(.7) + L(1 - .6)) / 5
    assert n == 2 and loss.item() == pytest.approx((bce0 + bce1) / 2, rel=1e-6)


def test_size_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="resize the masks"):
        guidance_loss(torch.rand(1, 2, 4, 4), torch.zeros(1, 8, 8, dtype=torch.uint8))
