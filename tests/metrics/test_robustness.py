"""Robustness metrics (max-sensitivity, local Lipschitz estimate): equal to Quantus 0.6 given its noise, hand-checked
on a linear model, per-image results independent of the batch and of how the noisy copies are chunked."""
import numpy as np
import pytest
import torch
from helpers.models import LinearNet

import attribution
from attribution.metrics import robustness

quantus = pytest.importorskip("quantus")
from test_sanity import PER_IMAGE, TinyCNN, quantus_call  # noqa: E402


@pytest.fixture
def setup():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 1, 8, 8, generator=g)
    y = torch.tensor([0, 2, 4])
    model = TinyCNN().eval()
    method = attribution.build_method("grad_input")
    return model, x, y, method, method(model, x, y)


def numpy_noise(x, start, stop, seed, stream, kind, a, b):
    """Quantus's draws: one global NumPy draw of the batch's shape per sample, in sample order."""
    draw = (lambda: np.random.normal(a, b, size=(len(x), x[0].numel()))) if kind == "normal" else (
        lambda: np.random.uniform(a, b, size=(len(x), x[0].numel())))
    out = [draw() for _ in range(start, stop)]
    return torch.tensor(np.stack(out), dtype=torch.float32).reshape(stop - start, *x.shape)


@pytest.mark.parametrize("name,cls,kw,ours", [
    ("max_sensitivity", "MaxSensitivity", {"nr_samples": 4}, {"nr_samples": 4}),
    ("max_sensitivity", "MaxSensitivity", {"nr_samples": 3, "lower_bound": 0.05, "upper_bound": 0.3, "abs": True},
     {"nr_samples": 3, "lower_bound": 0.05, "upper_bound": 0.3, "abs": True}),
    ("local_lipschitz", "LocalLipschitzEstimate", {"nr_samples": 4, **PER_IMAGE}, {"nr_samples": 4}),
    ("local_lipschitz", "LocalLipschitzEstimate", {"nr_samples": 3, "perturb_std": 0.3, "normalise": False},
     {"nr_samples": 3, "perturb_std": 0.3, "normalise": False}),
])
def test_equals_quantus_given_its_noise(setup, monkeypatch, name, cls, kw, ours):
    model, x, y, method, a = setup
    monkeypatch.setattr(robustness, "draw_noise", numpy_noise)
    np.random.seed(1)
    q = quantus_call(getattr(quantus, cls)(disable_warnings=True, **kw), model, x, y, a, method)
    np.random.seed(1)
    out = attribution.build_metric(name, **ours)(model, x, a, y, method=method)
    np.testing.assert_allclose(out[name].numpy(), q, rtol=1e-4)


def test_nan_when_the_prediction_changes_equals_quantus(setup, monkeypatch):
    model, x, y, method, a = setup
    monkeypatch.setattr(robustness, "draw_noise", numpy_noise)
    kw = {"nr_samples": 8, "lower_bound": 3.0, "return_nan_when_prediction_changes": True}
    np.random.seed(1)
    q = quantus_call(quantus.MaxSensitivity(disable_warnings=True, **kw), model, x, y, a, method)
    np.random.seed(1)
    out = attribution.build_metric("max_sensitivity", **kw)(model, x, a, y, method=method)
    np.testing.assert_allclose(out["max_sensitivity"].numpy(), q, rtol=1e-4)
    assert np.isnan(q).any() and not np.isnan(q).all()  # some copies flip the prediction: the case is exercised


def test_a_linear_model_by_hand():
    """Gradient x input of a linear logit model (objective logit) is w * x: a(x+e) - a(x) = w * e, so
    max-sensitivity = max_n ||w e_n|| / ||w x||."""
    model = LinearNet(shape=(1, 4, 4), classes=3).eval()
    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([1, 2])
    method = attribution.build_method("grad_input", objective="logit")
    m = attribution.build_metric("max_sensitivity", nr_samples=5, lower_bound=0.1)
    out = m(model, x, method(model, x, y), y, method=method)["max_sensitivity"]
    w = model.lin.weight[y].view(2, 1, 4, 4)
    eps = robustness.draw_noise(x, 0, 5, 42, 0, "uniform", -0.1, 0.1)
    expect = ((w * eps).flatten(2).norm(dim=2) / (w * x).flatten(1).norm(dim=1)).amax(0)
    torch.testing.assert_close(out, expect, rtol=1e-4, atol=0)
    rnd = attribution.build_method("random")
    # the random map is drawn by row: the stacked copies (other rows) get fresh noise, ||n - n'|| / ||n|| ~ sqrt(2)
    assert bool((m(model, x, rnd(model, x, y), y, method=rnd)["max_sensitivity"] > 1).all())


def test_batch_and_chunk_invariant_and_seeded(setup):
    model, x, y, method, a = setup
    full = attribution.build_metric("local_lipschitz", nr_samples=3)(model, x, a, y, method=method)
    small = attribution.build_metric("local_lipschitz", nr_samples=3)
    alone = torch.cat([small(model, x[i:i + 1], a[i:i + 1], y[i:i + 1], method=method)["local_lipschitz"]
                       for i in range(3)])
    torch.testing.assert_close(full["local_lipschitz"], alone, rtol=1e-5, atol=0)
    other = attribution.build_metric("local_lipschitz", nr_samples=3, seed=1)(model, x, a, y, method=method)
    assert not torch.allclose(full["local_lipschitz"], other["local_lipschitz"])


def test_bad_options_fail_naming_the_key():
    with pytest.raises(attribution.ConfigError, match="upper_bound"):
        attribution.build_metric("max_sensitivity", lower_bound=0.2, upper_bound=0.1)
    with pytest.raises(attribution.ConfigError, match="nr_samples"):
        attribution.build_metric("local_lipschitz", nr_samples=0)
    with pytest.raises(attribution.ConfigError, match="subsample"):
        attribution.build_metric("local_lipschitz", subsample=0)
