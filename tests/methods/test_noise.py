"""NoiseTunnel (SmoothGrad, SmoothGrad-squared, VarGrad over any method): equal to captum's NoiseTunnel with the same
noise draws, per-image noise scale as PAIR saliency's, batch and chunk invariance, counted passes, completeness of
SmoothGrad over IG, option errors."""
import numpy as np
import pytest
import torch
from helpers.models import MEAN, STD, SmoothNet, normalized_images

import attribution
from attribution import ConfigError, PassCounter
from attribution.engine.seeding import randn_per_image
from attribution.modifiers.noise import KINDS, NoiseTunnel

N_STEPS = 6  # our IG points; captum riemann_left with N_STEPS - 1 intervals is the same sum
SAMPLES = 4
SIGMA = 0.15
SEED = 3


def data(n=3, size=8):
    return normalized_images(n, size, seed=1), torch.arange(n) % 5


def base(name, **kw):
    if name == "ig":
        return attribution.build_method("ig", n_steps=N_STEPS, mean=MEAN, std=STD, **kw)
    # captum's InputXGradient multiplies by the (normalised) input itself: our baseline "mean" is zeros there
    return attribution.build_method("grad_input", baseline="mean", mean=MEAN, std=STD, **kw)


def tunnel(name, kind, samples=SAMPLES, **kw):
    return NoiseTunnel(base(name, **kw), kind=kind, samples=samples, sigma=SIGMA, seed=SEED)


def rel_l1(a, b):
    """Per-image sum |a - b| / sum |b| -> [B]."""
    return (a - b).abs().flatten(1).sum(1) / b.abs().flatten(1).sum(1).clamp_min(1e-30)


def captum_noise_tunnel(name, kind, model, x, y, monkeypatch):
    """captum's NoiseTunnel per image (its ``stdevs`` is one number per input tensor, ours is per image), with its
    Gaussian draws replaced by ours: captum draws the noise as ``torch.normal(0, stdev_expanded)`` with
    stdev_expanded [n, C,H,W]; the stand-in returns mean + std * z for our standard normal draws z, so captum's own
    code scales, adds and repeats everything else."""
    from captum.attr import InputXGradient, IntegratedGradients
    from captum.attr import NoiseTunnel as CaptumNoiseTunnel

    prob = lambda inp: torch.softmax(model(inp), -1)  # noqa: E731  (our objective "prob")
    inner = IntegratedGradients(prob) if name == "ig" else InputXGradient(prob)
    nt = CaptumNoiseTunnel(inner)
    flat = x.flatten(1)
    stdevs = SIGMA * (flat.amax(1) - flat.amin(1))  # PAIR's stdev_spread x the image's range
    black = (torch.zeros(1, *x.shape[1:]) - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    outs = []
    for i in range(len(x)):
        z = randn_per_image(x[i:i + 1], SAMPLES, SEED)[0]  # [n, C,H,W]: what NoiseTunnel draws for image i
        calls = []

        def normal(mean, std, *args, _z=z, _calls=calls, **kwargs):
            assert not args and not kwargs and std.shape == _z.shape, (args, kwargs, std.shape)
            _calls.append(1)
            return mean + std * _z

        kw = dict(baselines=black, n_steps=N_STEPS - 1, method="riemann_left") if name == "ig" else {}
        with monkeypatch.context() as m:
            m.setattr(torch, "normal", normal)
            outs.append(nt.attribute(x[i:i + 1], nt_type=kind, nt_samples=SAMPLES, stdevs=float(stdevs[i]),
                                     target=int(y[i]), **kw))
        assert len(calls) == 1  # one draw of all n copies, all of it ours
    return torch.cat(outs).float()


@pytest.mark.parametrize("name", ["ig", "grad_input"])
@pytest.mark.parametrize("kind", KINDS)
def test_equals_captum_noise_tunnel_with_the_same_draws(name, kind, monkeypatch):
    x, y = data()
    model = SmoothNet().eval()
    ours = tunnel(name, kind)(model, x, y)
    ref = captum_noise_tunnel(name, kind, model, x, y, monkeypatch)
    err = rel_l1(ours, ref)
    print(f"{name} {kind}: max relative L1 vs captum {float(err.max()):.3g}")
    assert ours.shape == x.shape and ours.dtype == torch.float32
    assert (err <= 1e-5).all(), err
    if kind != "smoothgrad":
        assert (ours >= 0).all()


def test_noise_scale_is_pair_saliencys_stdev_spread(monkeypatch):
    """PAIR saliency's SmoothGrad draws np.random.normal(0, stdev_spread * (max(x) - min(x))) per image."""
    from saliency.core import base as pair

    class Zero(pair.CoreSaliency):
        def GetMask(self, x_value, call_model_function, call_model_args=None):
            return np.zeros_like(x_value)

    x, _ = data()
    scales = []
    monkeypatch.setattr(np.random, "normal", lambda loc, scale, size: scales.append(scale) or np.zeros(size))
    for img in x:
        Zero().GetSmoothedMask(img.permute(1, 2, 0).numpy(), None, stdev_spread=SIGMA, nsamples=1)
    out = tunnel("grad_input", "smoothgrad").attribute(SmoothNet().eval(), x, torch.zeros(3, dtype=torch.long))
    assert torch.allclose(out.extras["noise_stdev"], torch.tensor(scales, dtype=torch.float32), rtol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_equals_each_image_alone_and_chunks_change_nothing(kind):
    x, y = data()
    model = SmoothNet().eval()
    batch = tunnel("ig", kind)(model, x, y)
    chunked = tunnel("ig", kind, max_batch=2)(model, x, y)
    alone = torch.cat([tunnel("ig", kind)(model, x[i:i + 1], y[i:i + 1]) for i in range(len(x))])
    scale = batch.abs().max()
    assert (batch - chunked).abs().max() / scale < 1e-5
    assert (batch - alone).abs().max() / scale < 1e-5


@pytest.mark.parametrize("name", ["ig", "grad_input"])
@pytest.mark.parametrize("kind", KINDS)
def test_cost_equals_the_counted_classifier_passes(name, kind):
    x, y = data(2)
    model, method = SmoothNet().eval(), tunnel(name, kind, max_batch=3)
    with PassCounter(model) as pc:
        method(model, x, y)
    cost = method.cost(8, 8)
    assert cost == {k: SAMPLES * v for k, v in base(name).cost(8, 8).items()}
    assert {"fb": pc.fb / len(x), "f": pc.f / len(x)} == cost


def test_smoothgrad_over_ig_completeness_is_that_of_a_path_over_the_mean():
    x, y = data()
    model = SmoothNet().eval()
    nt = NoiseTunnel(attribution.build_method("ig", n_steps=N_STEPS, mean=MEAN, std=STD), samples=SAMPLES,
                     sigma=SIGMA, seed=SEED)
    out = nt.attribute(model, x, y)
    noisy, _ = nt.noisy_copies(x)
    ig = attribution.build_method("ig", n_steps=N_STEPS, mean=MEAN, std=STD)
    copies = [ig.attribute(model, noisy[:, s], y) for s in range(SAMPLES)]  # each copy on its own
    f_start = torch.stack([c.f_start for c in copies], 1).mean(1)
    f_end = torch.stack([c.f_end for c in copies], 1).mean(1)
    assert torch.allclose(out.attr, torch.stack([c.attr for c in copies], 1).mean(1), rtol=1e-5, atol=1e-8)
    assert torch.allclose(out.f_start, f_start, rtol=1e-6) and torch.allclose(out.f_end, f_end, rtol=1e-6)
    # the mean-based definition, written out: |sum(mean attr) - (mean f_end - mean f_start)| / |mean f_end - ...|
    total = out.attr.flatten(1).double().sum(1)
    delta = (f_end - f_start).double()
    want = ((total - delta).abs() / delta.abs()).float()
    assert torch.allclose(out.completeness, want, rtol=1e-4, atol=1e-7)
    # the mean of the copies' gaps, so it shrinks with the steps as a path's does
    fine = NoiseTunnel(attribution.build_method("ig", n_steps=100, mean=MEAN, std=STD), samples=SAMPLES,
                       sigma=SIGMA, seed=SEED).attribute(model, x, y)
    assert (fine.completeness < 1e-3).all() and (fine.completeness < out.completeness).all()
    assert nt.is_path and nt.name == "ig+smoothgrad"
    for kind in ("smoothgrad_sq", "vargrad"):
        other = NoiseTunnel(ig, kind=kind, samples=SAMPLES)
        assert not other.is_path and other.attribute(model, x, y).completeness is None
    gi = NoiseTunnel(base("grad_input"))
    assert not gi.is_path and gi.attribute(model, x, y).completeness is None


def test_shares_the_bases_normalisation_and_evaluator_and_names_itself():
    ig = base("ig", max_batch=5)
    nt = NoiseTunnel(ig, kind="vargrad")
    assert nt.norm is ig.norm and nt.evaluator is ig.evaluator and nt.evaluator.max_batch == 5
    assert nt.name == "ig+vargrad" and nt.needs_vae is ig.needs_vae is False
    assert KINDS == ("smoothgrad", "smoothgrad_sq", "vargrad")


def test_zero_sigma_gives_the_base_map_and_zero_variance():
    x, y = data()
    model = SmoothNet().eval()
    plain = base("ig")(model, x, y)
    sg = NoiseTunnel(base("ig"), samples=2, sigma=0.0)(model, x, y)
    vg = NoiseTunnel(base("ig"), kind="vargrad", samples=2, sigma=0.0)(model, x, y)
    assert torch.allclose(sg, plain, rtol=1e-6, atol=1e-9) and (vg.abs() < 1e-12).all()


@pytest.mark.parametrize("bad, key", [
    (dict(kind="smoothgrad2"), "noise.kind"), (dict(kind=None), "noise.kind"),
    (dict(samples=0), "noise.samples"), (dict(samples=2.0), "noise.samples"), (dict(samples=True), "noise.samples"),
    (dict(kind="vargrad", samples=1), "noise.samples"),
    (dict(sigma=-0.1), "noise.sigma"), (dict(sigma=float("nan")), "noise.sigma"), (dict(sigma="0.1"), "noise.sigma"),
    (dict(seed=-1), "noise.seed"), (dict(seed=1.5), "noise.seed"),
])
def test_a_bad_option_raises_a_config_error_naming_its_key(bad, key):
    with pytest.raises(ConfigError, match=rf"invalid {key}="):
        NoiseTunnel(base("grad_input"), **bad)


def test_a_base_that_is_not_a_method_is_refused():
    with pytest.raises(ConfigError, match="noise.method"):
        NoiseTunnel("ig")
