"""DiffID: hand-computed linear cases, a loop reference of the authors' protocol, batching and options."""
import math

import numpy as np
import pytest
import torch
from torch import nn

import attribution
from attribution import PassCounter
from benchmarks.reference import diffid_curves


class SumModel(nn.Module):
    """Two classes: logit_0 = 0, logit_1 = sum(x) - offset (so p_1 = sigmoid(sum(x) - offset))."""

    def __init__(self, offset):
        super().__init__()
        self.offset = offset

    def forward(self, x):
        s = x.flatten(1).sum(1) - self.offset
        return torch.stack([torch.zeros_like(s), s], 1)


def _line():
    x = torch.arange(1.0, 11.0).view(1, 1, 1, 10)  # D = 10 elements with values 1..10
    return x, x.clone(), torch.tensor([1])  # attribution = x: the larger, the more important


def test_diffid_hand_computed_mean_fill():
    # deletion of the top k: the k largest are replaced by the mean of 1..10-k -> sum = 5 (11 - k)
    # insertion (replace the k smallest by the mean of k+1..10) -> sum = 5 (k + 11); class 1 iff sum > 45
    x, a, y = _line()
    out = attribution.build_metric("diffid")(SumModel(45.0), x, a, y)
    assert out["deletion_curve"].tolist() == [[1.0] + [0.0] * 8]
    assert out["insertion_curve"].tolist() == [[1.0] * 9]
    assert out["deletion"].item() == pytest.approx(1 / 9)
    assert out["insertion"].item() == 1.0
    assert out["diffid"].item() == pytest.approx(8 / 9)


def test_diffid_hand_computed_zero_fill():
    # deletion: sum(1..10-k) = (10-k)(11-k)/2 <= 45 for every k >= 1; insertion: 55 - k(k+1)/2 > 45 iff k <= 3
    x, a, y = _line()
    out = attribution.build_metric("diffid", fill="zero")(SumModel(45.0), x, a, y)
    assert out["deletion_curve"].tolist() == [[0.0] * 9]
    assert out["insertion_curve"].tolist() == [[1.0, 1.0, 1.0] + [0.0] * 6]
    assert out["diffid"].item() == pytest.approx(3 / 9)


def test_diffid_hand_computed_soft_score():
    # soft = clamp(p1(x~) / (p1(x) + 1e-8), 0, 1), p1 = sigmoid(sum - 45), p1(x) = sigmoid(10)
    x, a, y = _line()
    out = attribution.build_metric("diffid", score="soft")(SumModel(45.0), x, a, y)
    sig = lambda v: 1 / (1 + math.exp(-v))
    ref_del = [min(1.0, sig(5 * (11 - k) - 45) / (sig(10) + 1e-8)) for k in range(1, 10)]
    assert out["deletion_curve"][0].tolist() == pytest.approx(ref_del, rel=1e-5, abs=1e-7)
    assert out["insertion_curve"][0].tolist() == [1.0] * 9  # 5 (k + 11) - 45 > 10: clamped
    assert out["deletion"].item() == pytest.approx(sum(ref_del) / 9, rel=1e-5)


def test_diffid_counts_match_the_authors():
    m = attribution.build_metric("diffid")
    assert m.counts(3 * 256 * 256) == [19660, 39321, 58982, 78643, 98304, 117964, 137625, 157286, 176947]


@pytest.mark.parametrize("fill,score", [("mean", "hard"), ("zero", "soft"), ("blur", "hard"), ("avgpool", "soft")])
def test_diffid_matches_loop_reference(smooth_model, images, fill, score):
    x, y = images
    g = torch.Generator().manual_seed(3)
    attr = torch.randn(x.shape, generator=g)
    with torch.no_grad():
        y = smooth_model(x).argmax(-1)  # so that the hard score is not trivially zero
    out = attribution.build_metric("diffid", fill=fill, score=score, max_batch=5)(smooth_model, x, attr, y)
    # the authors' protocol as loops over images, ratios and directions, stable numpy ranking
    # (benchmarks/reference/diffid.py)
    ref = np.stack([diffid_curves(smooth_model, x[b], attr[b], int(y[b]), fill, score) for b in range(len(x))])
    np.testing.assert_allclose(out["insertion_curve"].numpy(), ref[:, 0], atol=1e-5)
    np.testing.assert_allclose(out["deletion_curve"].numpy(), ref[:, 1], atol=1e-5)
    np.testing.assert_allclose(out["diffid"].numpy(), (ref[:, 0] - ref[:, 1]).mean(1), atol=1e-5)


def test_diffid_ranks_elements_not_pixels_and_breaks_ties_by_index():
    # identical |A| everywhere: the stable order is the flat index order, channels included
    x = torch.zeros(1, 2, 1, 5)
    x[0, 0, 0, :] = 1.0  # channel 0 holds all the evidence, flat indices 0..4
    attr = torch.ones_like(x)
    out = attribution.build_metric("diffid", fill="zero")(SumModel(2.5), x, attr, torch.tensor([1]))
    # deletion removes flat indices 0..k-1 (channel 0 first): sum = 5 - min(k, 5); k = 1..9
    exp_del = [float(5 - min(k, 5) > 2.5) for k in range(1, 10)]
    # insertion removes the last k flat indices (channel 1 first): sum = 5 - max(0, k - 5)
    exp_ins = [float(5 - max(0, k - 5) > 2.5) for k in range(1, 10)]
    assert out["deletion_curve"][0].tolist() == exp_del
    assert out["insertion_curve"][0].tolist() == exp_ins


def test_diffid_chunking_and_pass_count(smooth_model, images):
    x, y = images
    attr = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    m1 = attribution.build_metric("diffid", max_batch=1, score="soft")
    with PassCounter(smooth_model) as pc:
        a = m1(smooth_model, x, attr, y)
    assert pc.f == len(x) * 19 and pc.fb == 0 and m1.cost() == {"f": 19}
    b = attribution.build_metric("diffid", score="soft")(smooth_model, x, attr, y)
    for k in a:
        assert a[k].shape == b[k].shape
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("bad", [{"fill": "noise"}, {"score": "auc"}, {"ratios": [0.0, 0.5]}, {"ratios": []},
                                 {"max_batch": 0}, {"autocast": "fp8"}, {"autocast": [1]}])
def test_diffid_rejects_bad_options(bad):
    with pytest.raises(ValueError):
        attribution.build_metric("diffid", **bad)


def test_diffid_autocast_option(smooth_model, images):
    x, y = images
    attr = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    ref = attribution.build_metric("diffid", score="soft")(smooth_model, x, attr, y)
    low = attribution.build_metric("diffid", score="soft", autocast="bf16")(smooth_model, x, attr, y)
    torch.testing.assert_close(low["diffid"], ref["diffid"], atol=0.05, rtol=0)
