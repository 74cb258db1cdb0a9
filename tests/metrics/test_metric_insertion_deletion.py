"""RISE insertion/deletion: hand-computed curves on a linear model, RISE's kernel and AUC, batching, options."""
import math

import numpy as np
import pytest
import torch
from torch import nn

import attribution
from attribution import PassCounter
from attribution.metrics.insertion_deletion import rise_auc, rise_blur, rise_kernel


class SumModel(nn.Module):
    """logit_0 = 0, logit_1 = sum(x): p_1 = sigmoid(sum(x))."""

    def forward(self, x):
        s = x.flatten(1).sum(1)
        return torch.stack([torch.zeros_like(s), s], 1)


def sig(v):
    return 1 / (1 + math.exp(-v))


def _square():
    x = torch.tensor([[4.0, 3.0], [2.0, 1.0]]).view(1, 1, 2, 2)
    return x, x.clone(), torch.tensor([1])  # saliency order = pixels 0, 1, 2, 3


def test_rise_hand_computed_one_pixel_steps():
    x, a, y = _square()
    m = attribution.build_metric("insertion_deletion", step=1, insertion_substrate="zero")
    out = m(SumModel(), x, a, y)
    dele = [sig(v) for v in (10, 6, 3, 1, 0)]  # most salient removed first (set to 0)
    ins = [sig(v) for v in (0, 4, 7, 9, 10)]  # most salient inserted first onto 0
    assert out["rise_deletion_curve"][0].tolist() == pytest.approx(dele, rel=1e-6)
    assert out["rise_insertion_curve"][0].tolist() == pytest.approx(ins, rel=1e-6)
    auc = lambda c: (sum(c) - c[0] / 2 - c[-1] / 2) / (len(c) - 1)
    assert out["rise_deletion"].item() == pytest.approx(auc(dele), rel=1e-6)
    assert out["rise_insertion"].item() == pytest.approx(auc(ins), rel=1e-6)
    assert m.cost(2, 2) == {"f": 10}


def test_rise_hand_computed_partial_last_step():
    # step 3 on 4 pixels: ceil(4/3) = 2 steps, 3 points; the last step moves only one pixel
    x, a, y = _square()
    out = attribution.build_metric("insertion_deletion", step=3, insertion_substrate="zero")(SumModel(), x, a, y)
    assert out["rise_deletion_curve"][0].tolist() == pytest.approx([sig(10), sig(1), sig(0)], rel=1e-6)
    assert out["rise_insertion_curve"][0].tolist() == pytest.approx([sig(0), sig(9), sig(10)], rel=1e-6)


def test_rise_channels_move_together_and_rank_by_channel_sum_of_abs():
    x = torch.ones(1, 2, 1, 3)
    attr = torch.tensor([[[[1.0, -5.0, 0.0]], [[1.0, 1.0, 3.0]]]])  # channel sums of |A|: 2, 6, 3 -> order 1, 2, 0
    out = attribution.build_metric("insertion_deletion", step=1, insertion_substrate="zero")(
        SumModel(), x, attr, torch.tensor([1]))
    assert out["rise_deletion_curve"][0].tolist() == pytest.approx([sig(6), sig(4), sig(2), sig(0)], rel=1e-6)


def test_rise_kernel_and_blur_equal_the_reference_construction():
    from scipy.ndimage import gaussian_filter
    from scipy.signal import correlate2d

    delta = np.zeros((11, 11))
    delta[5, 5] = 1
    k = gaussian_filter(delta, 5)
    np.testing.assert_allclose(rise_kernel().numpy(), k.astype("float32"))
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    ref = np.stack([[correlate2d(x[b, c].numpy(), k, mode="same", boundary="fill") for c in range(3)]
                    for b in range(2)])
    np.testing.assert_allclose(rise_blur(x).numpy(), ref, atol=1e-5)


def test_rise_default_substrates(smooth_model, images):
    x, y = images
    attr = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    out = attribution.build_metric("insertion_deletion")(smooth_model, x, attr, y)
    with torch.no_grad():
        p = lambda v: torch.softmax(smooth_model(v), -1).gather(1, y.view(-1, 1)).squeeze(1)
        torch.testing.assert_close(out["rise_insertion_curve"][:, 0], p(rise_blur(x)), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(out["rise_insertion_curve"][:, -1], p(x), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(out["rise_deletion_curve"][:, 0], p(x), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(out["rise_deletion_curve"][:, -1], p(torch.zeros_like(x)), atol=1e-6, rtol=1e-5)
    assert out["rise_insertion_curve"].shape == (3, 17)  # step = width 16 -> 16 steps + start
    torch.testing.assert_close(out["rise_insertion"], rise_auc(out["rise_insertion_curve"]))


def test_rise_chunking_and_pass_count(smooth_model, images):
    x, y = images
    attr = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    m = attribution.build_metric("insertion_deletion", step=32, max_batch=3)
    with PassCounter(smooth_model) as pc:
        a = m(smooth_model, x, attr, y)
    assert pc.f == len(x) * 2 * 9 and m.cost(16, 16) == {"f": 18}
    b = attribution.build_metric("insertion_deletion", step=32)(smooth_model, x, attr, y)
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("bad", [{"step": 0}, {"step": 1.5}, {"insertion_substrate": "noise"},
                                 {"deletion_substrate": "mean"}])
def test_rise_rejects_bad_options(bad):
    with pytest.raises(ValueError):
        attribution.build_metric("insertion_deletion", **bad)
