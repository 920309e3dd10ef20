"Mask refinement (glass.refine) against a direct NumPy implementation and hand-worked labels."
import math
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from glass.core import preset
from glass.refine import class_token_indices, class_maps, refine_scores, labels_from_scores, pseudo_mask, minmax


def np_bicubic(x, size, a=-0.75):
    "Bicubic resize of (..., n, n) to (size, size) written out: half-pixel centres, cubic convolution, clamped edges."
    n = x.shape[-1]
    def w(d):
        d = abs(d)
        return (a + 2) * d**3 - (a + 3) * d**2 + 1 if d <= 1 else (a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a if d < 2 else 0.0)
    M = np.zeros((size, n))
    for o in range(size):
        src = (o + 0.5) * n / size - 0.5; i0 = math.floor(src); t = src - i0
        for j, wt in zip(range(i0 - 1, i0 + 3), [w(t + 1), w(t), w(1 - t), w(2 - t)]): M[o, min(max(j, 0), n - 1)] += wt
    return M @ x @ M.T


def np_refine(cross, A, size, power=4):
    K, s = cross.shape[0], math.isqrt(A.shape[0])
    c = (np_bicubic(cross, s) if cross.shape[-1] != s else cross).reshape(K, -1)
    Ap = np.eye(A.shape[0])
    for _ in range(power): Ap = Ap @ A
    r = (Ap @ c.T).T.reshape(K, s, s)
    lo, hi = r.min((1, 2), keepdims=True), r.max((1, 2), keepdims=True)
    r = (r - lo) / np.maximum(hi - lo, 1e-12)
    return np_bicubic(r, size) if size != s else r


def test_numpy_bicubic_is_torch_bicubic():
    x = np.random.default_rng(1).random((3, 6, 6))
    got = F.interpolate(torch.from_numpy(x)[None], size=(11, 11), mode="bicubic", align_corners=False)[0].numpy()
    np.testing.assert_allclose(got, np_bicubic(x, 11), atol=1e-12)


@pytest.mark.parametrize("K,hc,hs,size,power", [(3, 4, 8, 20, 4), (2, 8, 8, 16, 4), (1, 5, 10, 30, 2), (4, 6, 12, 12, 1)])
def test_refine_equals_numpy(K, hc, hs, size, power):
    rng = np.random.default_rng(K * 100 + hc)
    A = rng.random((hs * hs, hs * hs)) ** 4; A /= A.sum(1, keepdims=True)      # random row-stochastic
    cr = rng.random((K, hc, hc))
    got = refine_scores(torch.from_numpy(cr), torch.from_numpy(A), size, power=power, mode="bicubic").numpy()
    np.testing.assert_allclose(got, np_refine(cr, A, size, power), atol=1e-9)


def test_refine_float32_close_to_numpy():
    rng = np.random.default_rng(5)
    R = rng.random((256, 256)) ** 8
    A = 0.5 * np.eye(256) + 0.5 * R / R.sum(1, keepdims=True)   # peaked on the diagonal, like real self-attention
    cr = rng.random((3, 8, 8))
    got = refine_scores(torch.from_numpy(cr).float(), torch.from_numpy(A).float(), 64).numpy()
    np.testing.assert_allclose(got, np_refine(cr, A, 64), atol=1e-5)


def test_thresholds_hand_built():
    sc = torch.tensor([[[0.90, 0.55, 0.10, 0.60],
                        [0.20, 0.50, 0.59, 0.40]],
                       [[0.10, 0.70, 0.45, 0.20],
                        [0.65, 0.30, 0.20, 0.49]]])
    # winner: 0.90(1) 0.70(2) 0.45(2) 0.60(1) / 0.65(2) 0.50(1) 0.59(1) 0.49(2)
    assert labels_from_scores(sc, fg=0.6, bg=0.5).tolist() == [[1, 2, 0, 1], [2, 255, 255, 0]]
    assert labels_from_scores(sc, fg=0.7, bg=0.45).tolist() == [[1, 2, 255, 255], [255, 255, 255, 255]]
    assert labels_from_scores(sc[:0]).tolist() == [[0] * 4] * 2
    assert labels_from_scores(sc).dtype == torch.uint8
    with pytest.raises(ValueError, match="bg_threshold"):
        labels_from_scores(sc, fg=0.4, bg=0.5)


def test_minmax_and_equal_resolutions():
    x = torch.tensor([[[1., 3.], [2., 5.]], [[7., 7.], [7., 7.]]])
    assert minmax(x).tolist() == [[[0, 0.5], [0.25, 1]], [[0, 0], [0, 0]]]
    # cross and self at the same resolution (toy world): no upsampling before A^p
    A = torch.eye(4)
    got = refine_scores(x, A, 2, power=4)
    assert torch.equal(got, minmax(x))


def test_class_tokens_and_pseudo_mask():
    from glass.tokenizers import build_clip_tokenizer
    tok = build_clip_tokenizer()
    assert class_token_indices(tok, ["dog", "car"]) == [[1], [2]]
    idx = class_token_indices(tok, ["dog", "zebra", "tv"])
    assert idx[0] == [1] and len(idx[1]) > 1 and idx[2] == [idx[1][-1] + 1]
    assert class_token_indices(tok, ["circle", "square"], prompt="red circle blue square") == [[2], [4]]
    with pytest.raises(ValueError, match="not found"):
        class_token_indices(tok, ["dog"], prompt="a cat")
    cross = torch.full((16, 77), 0.01)
    cross[:8, 1] = 0.9                     # class 1 on the top half, class 2 on the bottom-right quarter
    cross[12:, 2] = 0.9
    g = preset("coco").generate
    labels, scores = pseudo_mask(cross, None, [[1], [2]], 4, g)
    assert labels.tolist() == [[1] * 4, [1] * 4, [0] * 4, [2] * 4]
    assert scores.shape == (2, 4, 4)
    torch.testing.assert_close(class_maps(cross, [[1, 2]])[0], cross[:, 1:3].mean(-1).view(4, 4))
    for A in (None, torch.softmax(torch.rand(64, 64), -1)):          # no class: all background, no scores
        labels, scores = pseudo_mask(torch.rand(16, 77), A, [], 32, g)
        assert (labels == 0).all() and labels.shape == (32, 32) and scores.shape == (0, 32, 32)
