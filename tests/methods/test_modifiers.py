"""The path modifiers, each against its reference: IDGI vs its authors' numpy on the same path, the quadrature rules
vs captum's IntegratedGradients, Expected Gradients vs captum's GradientShap(stdevs=0) with the same draws; IDGI's
completeness for every path method; the combinations that make no sense fail before work."""
import numpy as np
import pytest
import torch
from helpers.models import MEAN, STD, SmoothNet, TanhNet, normalized_images, tiny_kl

import attribution
from attribution import ConfigError, PassCounter
from attribution.engine.rules import adaptive_boundaries, quadrature, uniform_boundaries
from attribution.engine.seeding import rand_per_image, randint_per_image
from attribution.vae import VAEAdapter
from benchmarks.reference import idgi_on_path

PATH_METHODS = ["ig", "blur_ig", "guided_ig", "sig", "eig", "mig", "ma_gig"]
LATENT = {"eig", "mig", "ma_gig"}
FIXED = ["ig", "blur_ig", "sig", "eig"]


@pytest.fixture(scope="module")
def vae():
    return VAEAdapter(tiny_kl(), mean=MEAN, std=STD)


def build(name, vae, **kw):
    kw = {"n_steps": 7, "mean": MEAN, "std": STD, **({"max_sigma": 3.0} if name == "blur_ig" else {}), **kw}
    if name in LATENT:
        kw["vae"] = vae
    return attribution.build_method(name, **kw)


def rel_l1(a, b):
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return float((a - b).abs().sum() / b.abs().sum().clamp_min(1e-30))


class Recorder(torch.nn.Module):
    """The classifier, remembering every row it sees: forward+backward rows (the path points whose gradient is taken)
    and forward-only rows (the path's end)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.fb, self.f = model, [], []

    def forward(self, x):
        (self.fb if x.requires_grad else self.f).append(x.detach().clone())
        return self.model(x)


def path_of(name, method, model, x, y):
    """The path points [P,C,H,W] a method integrates along, for one image."""
    if name in LATENT:
        method.return_path = True
        return method.attribute(model, x, y).extras["path"][0]
    rec = Recorder(model)
    method.attribute(rec, x, y)
    return torch.cat([*rec.fb, rec.f[-1]])


@pytest.mark.parametrize("name", PATH_METHODS)
def test_idgi_equals_its_authors_numpy_on_the_same_path(name, vae):
    model = SmoothNet().eval()
    x, y = normalized_images(1, 16, seed=4), torch.tensor([2])
    ours = build(name, vae, integration="idgi")(model, x, y)
    path = path_of(name, build(name, vae), model, x, y)  # the plain method walks the same path
    ref = idgi_on_path(model, path, 2)
    assert rel_l1(ours[0], ref) <= 1e-5, rel_l1(ours[0], ref)


@pytest.mark.parametrize("name", PATH_METHODS)
def test_idgi_is_complete_to_float_precision(name, vae):
    x, y = normalized_images(3, 16, seed=1), torch.arange(3)
    out = build(name, vae, integration="idgi", n_steps=12).attribute(TanhNet(), x, y)
    plain = build(name, vae, n_steps=12).attribute(TanhNet(), x, y)
    assert (out.completeness < 1e-5).all(), out.completeness
    assert (plain.completeness > 1e-4).any()  # the Riemann sum is not (so the check above can fail)


def captum_ig(model, x, y, b, rule, n):
    from captum.attr import IntegratedGradients

    prob = lambda inp: torch.softmax(model(inp), -1)  # noqa: E731
    method = {"gausslegendre": "gausslegendre"}.get(rule, f"riemann_{rule}")
    return IntegratedGradients(prob).attribute(x, baselines=b, target=y, n_steps=n, method=method).float()


@pytest.mark.parametrize("rule", ["left", "right", "middle", "trapezoid", "gausslegendre"])
def test_each_rule_equals_captums_integrated_gradients(rule):
    model, n = SmoothNet().eval(), 12
    x, y = normalized_images(3, 8, seed=2), torch.tensor([0, 3, 1])
    b = (torch.zeros_like(x) - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    method = attribution.build_method("ig", n_steps=n, rule=rule, mean=MEAN, std=STD)
    ours = method(model, x, y)
    m = n - 1  # every rule: the left sum's gradient budget
    ref = captum_ig(model, x, y, b, rule, m)
    if rule == "trapezoid":  # captum's step 1/m on a grid of spacing 1/(m-1): weights summing to (m-1)/m
        ref = ref * m / (m - 1)
    assert rel_l1(ours, ref) <= 1e-5, (rule, rel_l1(ours, ref))
    with PassCounter(model) as pc:
        method(model, x, y)
    assert {"fb": pc.fb / 3, "f": pc.f / 3} == method.cost()


def test_the_rules_weights_sum_to_one_and_gauss_legendre_nodes_sit_in_their_intervals():
    t = uniform_boundaries(9).expand(2, -1)
    for rule in ("left", "right", "middle", "trapezoid", "gausslegendre"):
        q = quadrature(rule, t)
        assert torch.allclose(q.weights().sum(1), torch.ones(2, dtype=torch.float64)), rule
        lo, hi = q.boundaries[:, q.lower], q.boundaries[:, q.upper]
        assert ((lo <= q.tags) & (q.tags <= hi)).all(), rule


def test_adaptive_boundaries_spend_the_steps_where_f_changes():
    probes = uniform_boundaries(4)
    f = torch.tensor([[0.0, 0.0, 0.6, 0.8, 0.8], [0.0, 0.25, 0.5, 0.75, 1.0]], dtype=torch.float64)
    t = adaptive_boundaries(probes, f, 12)
    widths = t.diff(dim=1)
    assert t.shape == (2, 13) and (widths > 0).all() and torch.allclose(t[:, -1], torch.ones(2, dtype=torch.float64))
    # image 0: f changes by 0, 0.6, 0.2, 0 over the four probe intervals: 1 + 8 * 0.6/0.8 = 7 steps in [0.25, 0.5],
    # 1 + 2 = 3 in [0.5, 0.75], 1 each where f is flat
    counts0 = [int(((t[0, 1:] > a) & (t[0, 1:] <= a + 0.25 + 1e-12)).sum()) for a in (0.0, 0.25, 0.5, 0.75)]
    assert counts0 == [1, 7, 3, 1], counts0
    assert torch.allclose(widths[1], torch.full((12,), 1 / 12, dtype=torch.float64))  # linear f: uniform


@pytest.mark.parametrize("name", FIXED)
@pytest.mark.parametrize("rule,spacing", [("middle", "uniform"), ("trapezoid", "adaptive"), ("left", "adaptive")])
def test_rules_and_spacings_on_every_fixed_path_converge_count_and_batch(name, rule, spacing, vae):
    model = TanhNet()
    x, y = normalized_images(3, 16, seed=1), torch.arange(3)
    fine = build(name, vae, n_steps=160)(model, x, y)
    method = build(name, vae, n_steps=40, rule=rule, spacing=spacing)
    out = method.attribute(model, x, y)
    assert rel_l1(out.attr, fine) < 0.05, rel_l1(out.attr, fine)
    assert out.completeness is not None
    alone = torch.cat([method(model, x[i:i + 1], y[i:i + 1]) for i in range(3)])
    assert rel_l1(alone, out.attr) < 1e-5
    with PassCounter(model) as pc:
        method(model, x, y)
    cost = method.cost()
    assert (pc.fb / 3, pc.f / 3) == (cost["fb"], cost["f"]), (pc.fb / 3, pc.f / 3, cost)


def test_adaptive_spacing_with_idgi_stays_complete():
    x, y = normalized_images(2, 16, seed=5), torch.arange(2)
    out = attribution.build_method("ig", n_steps=20, spacing="adaptive", integration="idgi", mean=MEAN,
                                   std=STD).attribute(TanhNet(), x, y)
    assert (out.completeness < 1e-5).all()


def test_expected_gradients_equal_captums_gradient_shap_with_the_same_draws(monkeypatch):
    from captum.attr import GradientShap

    model = SmoothNet().eval()
    x, y = normalized_images(3, 8, seed=2), torch.tensor([0, 3, 1])
    bank = normalized_images(5, 8, seed=9)
    n, seed = 6, 3
    method = attribution.build_method("ig", baseline="expected", n_samples=n, seed=seed, mean=MEAN, std=STD)
    method.set_references(bank)
    ours = method.attribute(model, x, y)
    idx = randint_per_image(x, n, len(bank), seed).flatten().tolist()  # image-major, as captum expands inputs
    alphas = rand_per_image(x, n, seed + 1).flatten().numpy()
    monkeypatch.setattr(np.random, "choice", lambda *a, **k: np.array(idx))
    monkeypatch.setattr(np.random, "uniform", lambda *a, **k: alphas)
    prob = lambda inp: torch.softmax(model(inp), -1)  # noqa: E731
    ref = GradientShap(prob).attribute(x, baselines=bank, target=y, n_samples=n, stdevs=0.0)
    assert rel_l1(ours.attr, ref) <= 1e-5, rel_l1(ours.attr, ref)
    with PassCounter(model) as pc:
        method(model, x, y)
    assert {"fb": pc.fb / 3, "f": pc.f / 3} == method.cost() == {"fb": n, "f": n + 1}
    monkeypatch.undo()
    other = attribution.build_method("ig", baseline="expected", n_samples=n, seed=seed + 1, mean=MEAN, std=STD)
    other.set_references(bank)
    assert rel_l1(other(model, x, y), ref) > 1e-3  # the check above can fail


@pytest.mark.parametrize("name", ["sig", "guided_ig", "ma_gig", "eig"])
def test_expected_gradients_on_other_paths_average_full_paths_from_each_drawn_baseline(name, vae):
    model = SmoothNet().eval()
    x, y = normalized_images(2, 16, seed=2), torch.tensor([0, 3])
    bank = normalized_images(4, 16, seed=9)
    method = build(name, vae, baseline="expected", n_samples=3, seed=1)
    method.set_references(bank)
    out = method.attribute(model, x, y)
    drawn = method.draw_baselines(x)  # [B, n, C, H, W]
    for i in range(2):
        maps = [build(name, vae, baseline=drawn[i, s:s + 1])(model, x[i:i + 1], y[i:i + 1]) for s in range(3)]
        assert rel_l1(out.attr[i], torch.cat(maps).mean(0)) <= 1e-5
    alone = method(model, x[1:], y[1:])
    assert rel_l1(alone[0], out.attr[1]) <= 1e-5  # a batch equals each image alone
    with PassCounter(model) as pc:
        method(model, x, y)
    cost = method.cost(16, 16)
    assert pc.fb / 2 <= cost["fb"] and pc.f / 2 == cost["f"]


@pytest.mark.parametrize("kw,match", [
    (dict(name="blur_ig", baseline="expected"), "Blur IG has no baseline input"),
    (dict(name="guided_ig", rule="trapezoid"), "not a fixed function of alpha"),
    (dict(name="ma_gig", spacing="adaptive"), "not a fixed function of alpha"),
    (dict(name="ig", rule="middle", integration="idgi"), "takes rule='left' only"),
    (dict(name="ig", rule="gausslegendre", spacing="adaptive"), "spacing='uniform' only"),
    (dict(name="ig", rule="simpson"), "rule"),
    (dict(name="ig", integration="idg"), "integration"),
    (dict(name="ig", n_samples=0), "n_samples"),
    (dict(name="grad_input", integration="idgi"), "integration"),
])
def test_combinations_that_make_no_sense_fail_before_work_naming_the_key(kw, match):
    with pytest.raises(ConfigError, match=match):
        attribution.build_method(**kw)


def test_expected_gradients_without_a_bank_name_the_fix():
    method = attribution.build_method("sig", baseline="expected", n_steps=4)
    with pytest.raises(ConfigError, match="set_references"):
        method(SmoothNet().eval(), normalized_images(1, 8), torch.tensor([0]))
