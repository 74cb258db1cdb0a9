"""AIC/SIC: equal to PAIR saliency's ``saliency.metrics.pic`` on the same images, masks and saliency maps."""
import numpy as np
import pytest
import torch
from helpers.models import MEAN, STD
from torch import nn

import attribution
from attribution.metrics._compat import numpy_trapz
from attribution.metrics.pic import (
    PIC_SKIP_REASONS,
    aggregate_pic,
    blurred_image,
    pic_curve_x,
    random_seed_mask,
    webp_size,
)

pair = pytest.importorskip("saliency.metrics.pic")


@pytest.fixture(autouse=True)
def one_blas_thread():
    """PAIR's griddata calls LAPACK per simplex: keep BLAS single-threaded so the reference runs fast too."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


class Contrast(nn.Module):
    """Class 1 = 'textured': logit_1 = 20 (mean over the region of |x - avgpool3(x)| - 0.3), logit_0 = 0."""

    def __init__(self, region=None):
        super().__init__()
        self.region = region

    def forward(self, x):
        hp = (x - nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)).abs()
        c = hp.mean((1, 2, 3)) if self.region is None else (hp * self.region).sum((1, 2, 3)) / (
            x.shape[1] * self.region.sum())
        return torch.stack([torch.zeros_like(c), 20 * (c - 0.3)], 1)


def textured(n=5, h=32, seed=0):
    """Smooth colour gradients plus sparse random texture (the evidence of class 1); the last image is flat."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, h), indexing="ij")
    base = torch.stack([yy, xx, 0.5 * (yy + xx)])[None].repeat(n, 1, 1, 1)
    where = torch.rand(n, 1, h, h, generator=g) < (torch.rand(n, 1, 1, 1, generator=g) * 0.5 + 0.3)
    where[-1] = False
    pix = (0.5 * base + 0.5 * torch.rand(n, 3, h, h, generator=g) * where).clamp(0, 1)
    x = (pix - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return x, where.float(), torch.ones(n, dtype=torch.long)


def test_blurred_image_and_webp_equal_pair():
    rng = np.random.default_rng(0)
    img = (rng.random((24, 20, 3)) * 255).astype(np.uint8)
    for frac in (0.0, 0.01, 0.2, 0.7, 1.0):
        mask = rng.random((24, 20)) < frac
        ours = blurred_image(img, mask)
        ref = pair.create_blurred_image(img, mask)
        assert ours.dtype == np.uint8 and np.array_equal(ours, ref), frac
        assert webp_size(ours) == pair.estimate_image_entropy(ref)
    gray = img[..., 0]
    mask = rng.random((24, 20)) < 0.1
    assert np.array_equal(blurred_image(gray, mask), pair.create_blurred_image(gray, mask))


def _pair_results(metric, model, x, attr, target, kind, masks):
    imgs, sal = metric.to_uint8(x), metric.saliency_map(attr)

    def pred_func(batch):
        t = metric.from_uint8(list(batch), torch.device("cpu"))
        with torch.no_grad():
            logits = model(t)
        if kind == "sic":
            return torch.softmax(logits, -1)[:, 1].double().numpy()
        return (logits.argmax(-1) == 1).double().numpy()

    results = []
    with numpy_trapz():
        for i in range(len(x)):
            try:
                results.append(pair.compute_pic_metric(
                    img=imgs[i], saliency_map=sal[i], random_mask=masks[i], pred_func=pred_func,
                    saliency_thresholds=list(metric.thresholds), min_pred_value=metric.min_pred_value,
                    keep_monotonous=True, num_data_points=metric.num_data_points))
            except pair.ComputePicMetricError:
                results.append(None)
    return results


def test_pic_equals_pair_saliency():
    x, where, y = textured()
    model = Contrast().eval()
    attr = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)) * (0.2 + where)
    metric = attribution.build_metric("pic", mean=MEAN, std=STD, workers=2, num_data_points=200)
    masks = metric.seed_masks(metric.to_uint8(x))
    out = metric(model, x, attr, y)
    assert out["sic_curve"].shape == (5, 201)
    for kind in ("sic", "aic"):
        ref = _pair_results(metric, model, x, attr, y, kind, masks)
        kept = [r for r in ref if r is not None]
        assert len(kept) >= 3
        for i, r in enumerate(ref):
            if r is None:
                assert torch.isnan(out[kind][i]) and out[f"{kind}_skip"][i] > 0
                assert torch.isnan(out[f"{kind}_curve"][i]).all()
            else:
                assert out[f"{kind}_skip"][i] == 0
                assert out[kind][i].item() == pytest.approx(r.auc, abs=1e-6)
                np.testing.assert_allclose(out[f"{kind}_curve"][i].numpy(), r.curve_y, atol=1e-6)
        with numpy_trapz():
            agg = pair.aggregate_individual_pic_results(kept, method="median")
            agg_mean = pair.aggregate_individual_pic_results(kept, method="mean")
        ours = aggregate_pic(out[f"{kind}_curve"], method="median")
        assert ours["n"] == len(kept) and ours["auc"] == pytest.approx(float(agg.auc), abs=1e-6)
        np.testing.assert_allclose(ours["curve_x"], agg.curve_x)
        assert aggregate_pic(out[f"{kind}_curve"], "mean")["auc"] == pytest.approx(float(agg_mean.auc), abs=1e-6)
    assert out["sic_skip"][-1].item() == 1 and "min_pred_value" in PIC_SKIP_REASONS[1]  # the flat image


def test_pic_masks_are_per_image_and_method_independent():
    x, _where, _y = textured(n=3)
    m = attribution.build_metric("pic", mean=MEAN, std=STD, seed=7)
    imgs = m.to_uint8(x)
    masks = m.seed_masks(imgs)
    assert masks.shape == (3, 32, 32) and all(mk.sum() == int(32 * 32 * 0.01) for mk in masks)
    assert np.array_equal(m.seed_masks(imgs[::-1]), masks[::-1])  # keyed by the image, not its position
    assert not np.array_equal(masks[0], masks[1])
    other = attribution.build_metric("pic", mean=MEAN, std=STD, seed=8).seed_masks(imgs)
    assert not np.array_equal(other, masks)
    by_id = m.seed_masks(imgs, ids=["a", "b", "c"])
    assert np.array_equal(by_id[0], m.seed_masks(imgs[1:2], ids=["a"])[0])
    assert np.array_equal(random_seed_mask(32, 32, 0.01, 7, 5), random_seed_mask(32, 32, 0.01, 7, 5))


def test_pic_workers_and_explicit_masks_agree():
    x, where, y = textured(n=3)
    model = Contrast().eval()
    attr = where.expand_as(x) + 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    m1 = attribution.build_metric("pic", mean=MEAN, std=STD, workers=1, num_data_points=50, max_batch=4)
    m2 = attribution.build_metric("pic", mean=MEAN, std=STD, workers=3, num_data_points=50)
    a = m1(model, x, attr, y)
    b = m2(model, x, attr, y, masks=torch.from_numpy(m2.seed_masks(m2.to_uint8(x))))
    for k in a:
        torch.testing.assert_close(a[k], b[k], equal_nan=True)


def test_aggregate_pic_handles_skips():
    x = pic_curve_x(4)
    curves = np.array([[0, 0.2, 0.4, 0.6, 1.0], [np.nan] * 5, [0, 0.4, 0.6, 0.8, 1.0], [0, 0.3, 0.5, 0.7, 1.0]])
    agg = aggregate_pic(torch.tensor(curves))
    assert agg["n"] == 3
    np.testing.assert_allclose(agg["curve_y"], [0, 0.3, 0.5, 0.7, 1.0])
    assert agg["auc"] == pytest.approx(np.trapezoid([0, 0.3, 0.5, 0.7, 1.0], x))
    assert np.isnan(aggregate_pic(np.full((2, 5), np.nan))["auc"])
    with pytest.raises(ValueError):
        aggregate_pic(curves, method="max")


@pytest.mark.parametrize("bad", [{"thresholds": [0.5, 0.1]}, {"thresholds": [0.0]}, {"saliency": "max"},
                                 {"workers": 0}, {"seed": 1.5}, {"num_data_points": 0}])
def test_pic_rejects_bad_options(bad):
    with pytest.raises(ValueError):
        attribution.build_metric("pic", **bad)


def test_pic_prefers_the_good_attribution():
    # the model only looks at the texture in the top-left quadrant: revealing it first is the good explanation
    x, where, y = textured(n=5, seed=3)
    region = torch.zeros(1, 1, 32, 32)
    region[..., :16, :16] = 1
    model = Contrast(region).eval()
    good = (where * region).expand_as(x) * (1 + 0.1 * torch.rand(x.shape, generator=torch.Generator().manual_seed(4)))
    rand = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    m = attribution.build_metric("pic", mean=MEAN, std=STD, num_data_points=100)
    g, r = m(model, x, good, y), m(model, x, rand, y)
    assert torch.equal(g["sic_skip"], r["sic_skip"])  # the skip rules do not depend on the attribution
    assert aggregate_pic(g["sic_curve"])["auc"] > aggregate_pic(r["sic_curve"])["auc"] + 0.1
    assert aggregate_pic(g["aic_curve"])["auc"] > aggregate_pic(r["aic_curve"])["auc"]


def test_pic_single_channel_images():
    x, where, y = textured(n=3, seed=6)
    gray = x[:, :1]
    model = Contrast().eval()
    m = attribution.build_metric("pic", mean=MEAN[:1], std=STD[:1], num_data_points=20, min_pred_value=0.0)
    imgs = m.to_uint8(gray)
    assert imgs.shape == (3, 32, 32) and imgs.dtype == np.uint8
    out = m(model, gray, where, y)
    assert out["sic_curve"].shape == (3, 21) and out["aic_skip"].dtype == torch.int64
