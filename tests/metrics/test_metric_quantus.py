"""The Quantus adapter equals calling Quantus 0.6 directly, per image, on NumPy without ``np.trapz``."""
import numpy as np
import pytest
import torch
from helpers.models import SmoothNet

import attribution
from attribution.metrics._compat import numpy_trapz
from attribution.metrics.quantus_adapter import QUANTUS_METRICS, snake_case

quantus = pytest.importorskip("quantus")

# small settings: (registered name, Quantus class, constructor keywords, channels)
CASES = [
    ("quantus_faithfulness_correlation", "FaithfulnessCorrelation", {"nr_runs": 5, "subset_size": 16}, 3),
    ("quantus_faithfulness_estimate", "FaithfulnessEstimate", {"features_in_step": 64}, 3),
    ("quantus_pixel_flipping", "PixelFlipping", {"features_in_step": 64}, 3),
    ("quantus_region_perturbation", "RegionPerturbation", {"patch_size": 4, "regions_evaluation": 5}, 3),
    ("quantus_monotonicity", "Monotonicity", {"features_in_step": 64}, 3),
    ("quantus_monotonicity_correlation", "MonotonicityCorrelation", {"nr_samples": 2, "features_in_step": 64}, 3),
    ("quantus_road", "ROAD", {"percentages": [20, 60]}, 1),
    ("quantus_irof", "IROF", {}, 1),
    ("quantus_selectivity", "Selectivity", {"patch_size": 8}, 3),
    ("quantus_sufficiency", "Sufficiency", {}, 3),
    ("quantus_infidelity", "Infidelity", {"perturb_patch_sizes": [8], "n_perturb_samples": 2}, 3),
]


def _data(channels, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    model = SmoothNet(channels=channels).eval()
    x = torch.randn(n, channels, 16, 16, generator=g)
    attr = torch.randn(x.shape, generator=g)
    with torch.no_grad():
        y = model(x).argmax(-1)
    return model, x, attr, y


def _direct(cls_name, kwargs, model, x, attr, y):
    """Quantus called by hand, as its README does (channel-summed attributions, seeded global RNG)."""
    metric = getattr(quantus, cls_name)(**kwargs, disable_warnings=True, return_aggregate=False)
    a = attr.sum(1, keepdim=True).numpy()
    np.random.seed(0)
    with numpy_trapz():
        scores = metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a, channel_first=True,
                        device="cpu", batch_size=len(x))
        auc = None
        if hasattr(metric, "get_auc_score") and cls_name != "IROF":
            auc = [float(quantus.helpers.utils.calculate_auc(np.asarray(s))) for s in scores]
    return scores, auc


@pytest.mark.parametrize("name,cls_name,kwargs,channels", CASES, ids=[c[0] for c in CASES])
def test_adapter_equals_direct_quantus(name, cls_name, kwargs, channels):
    model, x, attr, y = _data(channels)
    ours = attribution.build_metric(name, **kwargs)(model, x, attr, y)
    ref, auc = _direct(cls_name, kwargs, model, x, attr, y)
    assert ours[name].shape == (len(x),) and ours[name].dtype == torch.float32
    if cls_name == "ROAD":  # Quantus keeps only the mean curve over images: the adapter's per-image rows average to it
        assert isinstance(ref, dict)
        np.testing.assert_allclose(ours[f"{name}_curve"].mean(0).numpy(), list(ref.values()), atol=1e-6)
    elif f"{name}_curve" in ours:
        np.testing.assert_allclose(ours[f"{name}_curve"].numpy(), np.asarray(ref, dtype=float), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours[name].numpy(), auc, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(ours[name].numpy(), np.asarray(ref, dtype=float), rtol=1e-5, atol=1e-6)


def test_generic_quantus_entry_and_names():
    model, x, attr, y = _data(3)
    a = attribution.build_metric("quantus", metric_name="PixelFlipping", features_in_step=64)(model, x, attr, y)
    b = attribution.build_metric("quantus_pixel_flipping", features_in_step=64)(model, x, attr, y)
    torch.testing.assert_close(a["quantus_pixel_flipping"], b["quantus_pixel_flipping"])
    assert snake_case("MonotonicityCorrelation") == "monotonicity_correlation" and snake_case("ROAD") == "road"
    assert set(QUANTUS_METRICS) <= set(attribution.available_metrics())


def test_auto_defaults_and_multichannel_workarounds():
    model, x, attr, y = _data(3, n=3)
    pf = attribution.build_metric("quantus_pixel_flipping")
    assert pf.quantus_kwargs(x.shape)["features_in_step"] == 4  # 16*16 / 64
    assert pf(model, x, attr, y)["quantus_pixel_flipping_curve"].shape == (3, 3 * 64)
    road = attribution.build_metric("quantus_road", percentages=[10, 50, 90])(model, x, attr, y)
    assert road["quantus_road_curve"].shape == (3, 3) and set(road["quantus_road_curve"].unique().tolist()) <= {0, 1}
    irof = attribution.build_metric("quantus_irof")(model, x, attr, y)
    assert irof["quantus_irof"].shape == (3,) and torch.isfinite(irof["quantus_irof"]).all()


def test_seed_restores_the_global_rng():
    model, x, attr, y = _data(3, n=2)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    m = attribution.build_metric("quantus_faithfulness_correlation", nr_runs=3, subset_size=8)
    first = m(model, x, attr, y)["quantus_faithfulness_correlation"]
    assert np.array_equal(np.random.get_state()[1], before)
    torch.testing.assert_close(first, m(model, x, attr, y)["quantus_faithfulness_correlation"])


def test_numpy_trapz_shim_is_scoped():
    had = hasattr(np, "trapz")
    with numpy_trapz():
        with numpy_trapz():
            assert np.trapz([1.0, 2.0, 3.0]) == 4.0
        assert hasattr(np, "trapz")
    assert hasattr(np, "trapz") == had


def test_adapter_rejects_bad_options():
    with pytest.raises(ValueError, match="allowed"):
        attribution.build_metric("quantus_pixel_flipping", features_in_stepz=4)
    with pytest.raises(ValueError, match="metric_name"):
        attribution.build_metric("quantus", metric_name="PixelFlippin")
    with pytest.raises(ValueError):
        attribution.build_metric("quantus_road", reduce_channels="none")
    with pytest.raises(ValueError):
        attribution.build_metric("quantus_selectivity", reduce_channels="max")
    model, x, attr, y = _data(3, n=2)
    with pytest.raises(ValueError, match="eval"):
        attribution.build_metric("quantus_sufficiency")(model.train(), x, attr, y)


def test_non_finite_attributions_give_nan_rows_and_the_rest_is_scored_as_without_them():
    model, x, attr, y = _data(3)
    attr[1, 0, 2, 3] = float("nan")
    attr[2, 1, 0, 0] = float("inf")
    metric = attribution.build_metric("quantus_pixel_flipping", features_in_step=64)
    out = metric(model, x, attr, y)
    keep = torch.tensor([0, 3])
    ref = metric(model, x[keep], attr[keep], y[keep])
    for key in ("quantus_pixel_flipping", "quantus_pixel_flipping_curve"):
        assert out[key].shape[0] == 4
        assert torch.isnan(out[key][1]).all() and torch.isnan(out[key][2]).all()
        torch.testing.assert_close(out[key][keep], ref[key])
    all_bad = metric(model, x[:2], torch.full_like(attr[:2], float("nan")), y[:2])
    assert torch.isnan(all_bad["quantus_pixel_flipping"]).all() and all_bad["quantus_pixel_flipping"].shape == (2,)
