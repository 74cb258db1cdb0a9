"""Sanity (randomisation) metrics: equal to Quantus 0.6 on small inputs, hand-checkable cases, the user's model
untouched, per-image results independent of the batch."""
import numpy as np
import pytest
import torch
from torch import nn

import attribution
from attribution.metrics import _rerun, sanity
from attribution.metrics._similarity import spearman

quantus = pytest.importorskip("quantus")


class TinyCNN(nn.Module):
    """conv -> batch norm -> tanh -> conv -> pooled linear head: four layers with reset_parameters."""

    def __init__(self, classes=5, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(16, classes)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.1, 0.1)
            self.bn.running_var.uniform_(0.5, 1.5)

    def forward(self, x):
        h = torch.tanh(self.conv2(torch.tanh(self.bn(self.conv1(x)))))
        return self.head(nn.functional.adaptive_avg_pool2d(h, 2).flatten(1))


@pytest.fixture
def setup():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 1, 8, 8, generator=g)
    y = torch.tensor([0, 1, 2, 3])
    model = TinyCNN().eval()
    method = attribution.build_method("grad_input")
    return model, x, y, method, method(model, x, y)


def explain_func(method):
    """Quantus's explain_func over the library's method: the channel-summed map, as the metrics reduce it."""
    def explain(model, inputs, targets, **kwargs):
        x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
        return method(model, x, torch.as_tensor(np.asarray(targets)).long()).sum(1, keepdim=True).numpy()
    return explain


def quantus_call(metric, model, x, y, a, method, **kw):
    return metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=None if a is None else a.numpy(),
                  explain_func=explain_func(method), channel_first=True, device="cpu", batch_size=len(x), **kw)


PER_IMAGE = {"normalise_func_kwargs": {"normalise_axes": (1, 2, 3)}}  # Quantus normalising each image alone


@pytest.mark.parametrize("order", ["top_down", "bottom_up", "independent"])
def test_mprt_equals_quantus_layer_by_layer(setup, order):
    model, x, y, method, a = setup
    q = quantus_call(quantus.MPRT(layer_order=order, disable_warnings=True, **PER_IMAGE), model, x, y, a, method)
    out = attribution.build_metric("mprt", layer_order=order)(model, x, a, y, method=method)
    layers = [k for k in q if k != "original"]
    assert layers == (sanity.randomisable_layers(model)[::-1] if order == "top_down"
                      else sanity.randomisable_layers(model))
    expect = np.array([q[k] for k in layers]).T
    np.testing.assert_allclose(out["mprt_curve"].numpy(), expect, atol=1e-5)
    np.testing.assert_allclose(out["mprt"].numpy(), expect[:, -1], atol=1e-5)
    np.testing.assert_allclose(out["mprt_average"].numpy(), expect.mean(1), atol=1e-5)


def test_mprt_skip_layers_ssim_and_original_equal_quantus_at_its_defaults_on_one_image(setup):
    model, x, y, method, a = setup  # one image: Quantus's batch-wide normalisation is per image
    def q_ssim(a, b, batched=False, **kw):  # Quantus's ssim returns a list where MPRT calls .tolist()
        return np.asarray(quantus.similarity_func.ssim(a, b, batched=batched, **kw))

    q = quantus_call(quantus.MPRT(skip_layers=True, similarity_func=q_ssim, disable_warnings=True),
                     model, x[:1], y[:1], a[:1], method)
    out = attribution.build_metric("mprt", skip_layers=True, similarity_func="ssim", original=True)(
        model, x[:1], a[:1], y[:1], method=method)
    assert list(q) == ["original", "conv1"]
    assert "mprt_curve" not in out  # one step: no curve
    np.testing.assert_allclose(out["mprt"].numpy(), q["conv1"], atol=1e-5)
    np.testing.assert_allclose(out["mprt_original"].numpy(), q["original"], atol=1e-5)


@pytest.mark.parametrize("samples,magnitude,order", [(3, 0.2, "bottom_up"), (2, 0.1, "top_down")])
def test_smooth_mprt_equals_quantus_with_its_noise(setup, monkeypatch, samples, magnitude, order):
    model, x, y, method, _ = setup

    def numpy_noise(x, start, stop, seed, stream, kind, a, b):  # Quantus's draws: np.random.randn, in its order
        draws = [np.random.randn(*x.shape) for _ in range(start, stop)]
        return torch.tensor(np.stack(draws) if draws else np.zeros((0, *x.shape)), dtype=torch.float32)

    monkeypatch.setattr(sanity, "draw_noise", numpy_noise)
    monkeypatch.setattr(quantus, "explain", explain_func(method))  # SmoothMPRT calls quantus.explain directly
    np.random.seed(0)
    q = quantus_call(quantus.SmoothMPRT(nr_samples=samples, noise_magnitude=magnitude, layer_order=order,
                                        disable_warnings=True), model, x, y, None, method)
    np.random.seed(0)
    m = attribution.build_metric("smooth_mprt", nr_samples=samples, noise_magnitude=magnitude, layer_order=order,
                                 original=True)
    out = m(model, x, torch.zeros_like(x), y, method=method)  # the reference is recomputed: attr is not used
    layers = [k for k in q if k != "original"]
    np.testing.assert_allclose(out["smooth_mprt_curve"].numpy(), np.array([q[k] for k in layers]).T, atol=1e-4)
    np.testing.assert_allclose(out["smooth_mprt_original"].numpy(), q["original"], atol=1e-4)


@pytest.mark.parametrize("order", ["bottom_up", "independent"])
def test_efficient_mprt_equals_quantus(setup, order):
    model, x, y, method, a = setup
    q = quantus_call(quantus.EfficientMPRT(layer_order=order, disable_warnings=True), model, x, y, a, method)
    out = attribution.build_metric("efficient_mprt", layer_order=order)(model, x, a, y, method=method)
    np.testing.assert_allclose(out["efficient_mprt"].numpy(), q, atol=1e-6)


def test_random_logit_equals_quantus_with_its_draws(setup, monkeypatch):
    model, x, y, method, a = setup

    def numpy_classes(x, high, seed):  # Quantus's draw: np.random.seed(seed); randint(0, K - 1, B)
        np.random.seed(seed)
        return torch.tensor(np.random.randint(0, high, len(x)))

    monkeypatch.setattr(sanity, "off_class_draws", numpy_classes)
    for kw, ours in (({}, {}), ({"similarity_func": quantus.similarity_func.correlation_spearman},
                               {"similarity_func": "spearman"})):
        q = quantus_call(quantus.RandomLogit(num_classes=5, disable_warnings=True, **PER_IMAGE, **kw),
                         model, x, y, a, method)
        out = attribution.build_metric("random_logit", num_classes=5, **ours)(model, x, a, y, method=method)
        np.testing.assert_allclose(out["random_logit"].numpy(), q, atol=1e-5)
        assert bool((out["random_logit_class"] != y).all())


def test_the_users_model_is_untouched_and_the_global_rng_kept(setup):
    model, x, y, method, a = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(7)
    expect = torch.rand(3)
    torch.manual_seed(7)
    attribution.build_metric("mprt")(model, x, a, y, method=method)
    attribution.build_metric("efficient_mprt")(model, x, a, y, method=method)
    assert torch.equal(torch.rand(3), expect)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_full_randomisation_decorrelates_a_model_dependent_map_but_not_the_random_control(setup):
    """Hand-checkable: gradient x input of a model whose every layer is reset, against the trained one, is far
    from rank-identical; the random map ignores the model (seeded by the input's shape) and stays identical."""
    model, x, y, method, a = setup
    m = attribution.build_metric("mprt", skip_layers=True)
    assert float(m(model, x, a, y, method=method)["mprt"].abs().mean()) < 0.9
    rnd = attribution.build_method("random")
    assert torch.allclose(m(model, x, rnd(model, x, y), y, method=rnd)["mprt"], torch.ones(4))
    assert torch.allclose(attribution.build_metric("efficient_mprt")(model, x, rnd(model, x, y), y,
                                                                     method=rnd)["efficient_mprt"], torch.zeros(4))


def test_one_image_alone_equals_the_batch_and_subsample_picks_by_image(setup):
    model, x, y, method, a = setup
    for name in ("random_logit", "smooth_mprt"):
        kw = {"nr_samples": 2} if name == "smooth_mprt" else {}
        m = attribution.build_metric(name, **kw)
        full = m(model, x, a, y, method=method)[name]
        alone = torch.cat([m(model, x[i:i + 1], a[i:i + 1], y[i:i + 1], method=method)[name] for i in range(4)])
        torch.testing.assert_close(full, alone, atol=1e-5, rtol=0)
    half = attribution.build_metric("mprt", skip_layers=True, subsample=0.5)
    out = half(model, x, a, y, method=method)["mprt"]
    picked = half.picked(x)
    assert torch.equal(out.isnan(), ~picked) and 0 < int(picked.sum()) < 4
    assert torch.equal(half(model, x.flip(0), a.flip(0), y.flip(0), method=method)["mprt"].isnan(), ~picked.flip(0))


def test_a_call_without_the_method_fails_naming_it(setup):
    model, x, y, _, a = setup
    with pytest.raises(attribution.ConfigError, match="method=m"):
        attribution.build_metric("mprt")(model, x, a, y)
    with pytest.raises(attribution.ConfigError, match="layer_order"):
        attribution.build_metric("mprt", layer_order="sideways")
    assert _rerun.MethodMetric.needs_method and not attribution.metrics.Metric.needs_method


def test_spearman_matches_scipy_with_ties():
    scipy_stats = pytest.importorskip("scipy.stats")
    a = torch.tensor([[1.0, 2.0, 2.0, 0.0, 5.0], [3.0, 1.0, 1.0, 1.0, 0.0]])
    b = torch.tensor([[0.5, 0.1, 0.3, 0.3, 0.9], [1.0, 2.0, 3.0, 4.0, 5.0]])
    expect = [scipy_stats.spearmanr(a[i], b[i])[0] for i in range(2)]
    np.testing.assert_allclose(spearman(a, b).numpy(), expect, atol=1e-12)
