"""Guided IG: agreement with PAIR saliency's GuidedIG, with the authors' per-image loop (benchmarks.reference),
schedule properties, batch/chunk invariance, pass counts, the shared inner-loop helper, and config validation.

Measured (SmoothNet, 3x16x16, fraction 0.1, CPU float32):
- schedule "pair" vs saliency.core.GuidedIG(max_dist=1.0), N=20: max|diff| / max|ref| <= 3e-7 per image.
- schedule "authors" vs the authors' per-image 2N-1-pass loop: <= 3.4e-7 relative at N=30, <= 1.8e-6 at N=200
  (also <= 2e-6 on the tiny timm ResNet, N=20).
- batch (each image alone) and chunk (max_batch=2) invariance on the tiny timm ResNet: <= 4.3e-7.
- completeness at N=200: 0.025-0.046 (N=25: 0.10-0.18); the staircase path keeps a diagonal-Hessian term, so it
  falls slowly with N; a linear model with the logit objective is exact (< 1e-5).
"""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.models import MEAN, STD, LinearNet, SmoothNet

import attribution
from attribution import ConfigError, PassCounter
from attribution.engine.guided import guided_step, l1_distance, lerp_move, lower_quantile
from benchmarks.reference import authors_guided_ig

M = torch.tensor(MEAN).view(1, 3, 1, 1)
S = torch.tensor(STD).view(1, 3, 1, 1)


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(1)
    pix = torch.rand(3, 3, 16, 16, generator=g)
    x = (pix - M) / S
    return x, torch.tensor([0, 1, 2]), ((torch.zeros_like(x) - M) / S)


def rel_err(a, b):
    """Per image max|a - b| / max|b|."""
    a, b = a.double(), b.double()
    return ((a - b).flatten(1).abs().amax(1) / b.flatten(1).abs().amax(1)).tolist()


def prob_grad(model, x, y):
    xr = x.detach().clone().requires_grad_(True)
    p = torch.softmax(model(xr), -1).gather(1, y.view(-1, 1)).sum()
    return torch.autograd.grad(p, xr)[0]


@pytest.fixture
def numpy_quantile_shim(monkeypatch):
    """saliency 0.2 calls np.quantile(..., interpolation=); numpy 2 renamed the keyword to method=."""
    orig = np.quantile

    def quantile(a, q, *args, interpolation=None, **kw):
        if interpolation is not None:
            kw["method"] = interpolation
        return orig(a, q, *args, **kw)

    monkeypatch.setattr(np, "quantile", quantile)


# --- agreement -------------------------------------------------------------------------------------------------
def test_pair_schedule_matches_saliency_guided_ig(data, numpy_quantile_shim):
    from saliency.core import INPUT_OUTPUT_GRADIENTS
    from saliency.core import GuidedIG as PairGuidedIG

    x, y, b = data
    model = SmoothNet().eval()
    n, fraction = 20, 0.1
    ours = attribution.build_method("guided_ig", n_steps=n, fraction=fraction, schedule="pair", mean=MEAN,
                                    std=STD)(model, x, y)
    refs = []
    for i in range(len(x)):
        def call(batch, call_model_args=None, expected_keys=None, i=i):
            g = prob_grad(model, torch.as_tensor(batch, dtype=torch.float32), y[i:i + 1].expand(len(batch)))
            return {INPUT_OUTPUT_GRADIENTS: g.numpy()}

        refs.append(PairGuidedIG().GetMask(x[i].numpy(), call, x_baseline=b[i].numpy(), x_steps=n,
                                           fraction=fraction, max_dist=1.0))
    ref = torch.from_numpy(np.stack(refs))
    err = rel_err(ours, ref)
    assert max(err) < 1e-5, err  # measured <= 3e-7
    # the authors' schedule is a different (2/N last segment) path: same scale, not the same numbers
    authors = attribution.build_method("guided_ig", n_steps=n, fraction=fraction, mean=MEAN, std=STD)(model, x, y)
    assert max(rel_err(authors, ref)) > 1e-4


def test_authors_schedule_matches_per_image_reference(data):
    x, y, b = data
    model = SmoothNet().eval()
    n, fraction = 30, 0.1
    ours = attribution.build_method("guided_ig", n_steps=n, fraction=fraction, mean=MEAN, std=STD)(model, x, y)
    # the authors' GuidedPathGenerator + compute_ig, one image at a time (2N-1 passes per image), each image steered
    # by its own label (benchmarks/reference/guided_ig.py)
    ref = torch.stack([authors_guided_ig(model, x[i], b[i], int(y[i]), n, fraction) for i in range(len(x))])
    err = rel_err(ours, ref)
    assert max(err) < 1e-5, err


# --- the authors' variant on its own -----------------------------------------------------------------------------
def _captured_points(model, method, x, y):
    """Inputs of every forward+backward the method runs (its gradient points), as a list of [B,C,H,W]."""
    pts = []
    handle = model.register_forward_pre_hook(
        lambda mod, args: pts.append(args[0].detach().clone()) if args[0].requires_grad else None)
    try:
        out = method.attribute(model, x, y)
    finally:
        handle.remove()
    return pts, out


@pytest.mark.parametrize("schedule", ["authors", "pair"])
def test_schedule_l1_targets_and_endpoints(data, schedule):
    x, y, b = data
    model = SmoothNet().eval()
    n = 20
    method = attribution.build_method("guided_ig", n_steps=n, schedule=schedule, mean=MEAN, std=STD)
    pts, out = _captured_points(model, method, x, y)
    assert len(pts) == (n - 1 if schedule == "authors" else n)
    assert torch.equal(pts[0], b)  # the path starts at the black baseline
    total = l1_distance(b.flatten(1), x.flatten(1))
    for k, p in enumerate(pts):  # point k sits at L1 distance L (1 - k/N) from x
        frac = l1_distance(p.flatten(1), x.flatten(1)) / total
        assert torch.allclose(frac, torch.full_like(frac, 1 - k / n), rtol=1e-5, atol=1e-6), (k, frac)
    last = (l1_distance(pts[-1].flatten(1), x.flatten(1)) / total).tolist()
    expected = 2 / n if schedule == "authors" else 1 / n  # the authors' last segment spans 2/N
    assert all(abs(v - expected) < 1e-6 for v in last), last
    # each coordinate only moves from b towards x: every point lies in the box spanned by b and x
    for p in pts:
        lo, hi = torch.minimum(b, x), torch.maximum(b, x)
        assert ((p >= lo - 1e-6) & (p <= hi + 1e-6)).all()
    # the f values reported are those at the two ends
    f = torch.softmax(model(torch.cat([b, x])), -1)
    assert torch.allclose(out.f_start, f[:3].gather(1, y.view(-1, 1)).squeeze(1), atol=1e-7)
    assert torch.allclose(out.f_end, f[3:].gather(1, y.view(-1, 1)).squeeze(1), atol=1e-7)


def test_completeness(data):
    x, y, _ = data
    model = SmoothNet().eval()
    fine = attribution.build_method("guided_ig", n_steps=200, mean=MEAN, std=STD).attribute(model, x, y)
    coarse = attribution.build_method("guided_ig", n_steps=25, mean=MEAN, std=STD).attribute(model, x, y)
    assert (fine.completeness < 0.06).all(), fine.completeness  # measured 0.025-0.046
    assert (coarse.completeness > 1.5 * fine.completeness).all()
    # with a linear objective every left sum is exact: sum(attr) = f(x) - f(b)
    lin = LinearNet(shape=(3, 16, 16)).eval()
    out = attribution.build_method("guided_ig", n_steps=10, objective="logit", mean=MEAN, std=STD).attribute(
        lin, x, y)
    assert (out.completeness < 1e-5).all(), out.completeness


# --- batching --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule", ["authors", "pair"])
def test_batch_and_chunk_invariance(data, tiny_timm, schedule):
    x, y, _ = data
    kw = dict(n_steps=20, fraction=0.1, schedule=schedule, mean=MEAN, std=STD)
    batch = attribution.build_method("guided_ig", **kw)(tiny_timm, x, y)
    alone = torch.cat([attribution.build_method("guided_ig", **kw)(tiny_timm, x[i:i + 1], y[i:i + 1])
                       for i in range(len(x))])
    assert max(rel_err(batch, alone)) < 1e-5
    chunked = attribution.build_method("guided_ig", max_batch=2, **kw)(tiny_timm, x, y)
    assert max(rel_err(chunked, batch)) < 1e-5
    # own targets per image (upstream steered every image by the whole label batch)
    other = attribution.build_method("guided_ig", **kw)(tiny_timm, x, torch.tensor([0, 0, 0]))
    assert max(rel_err(other[1:], batch[1:])) > 1e-3
    assert max(rel_err(other[:1], batch[:1])) < 1e-5


@pytest.mark.parametrize("schedule", ["authors", "pair"])
def test_pass_count_equals_cost(data, schedule):
    x, y, _ = data
    model = SmoothNet().eval()
    method = attribution.build_method("guided_ig", n_steps=12, schedule=schedule, max_batch=2)
    with PassCounter(model) as pc:
        method(model, x, y)
    cost = method.cost(16, 16)
    assert pc.fb == cost["fb"] * len(x) and pc.f == cost["f"] * len(x)
    assert cost == {"fb": 11 if schedule == "authors" else 12, "f": 1}


def test_input_equal_to_baseline_gives_zero(data):
    _, y, b = data
    model = SmoothNet().eval()
    out = attribution.build_method("guided_ig", n_steps=5, mean=MEAN, std=STD)(model, b, y)
    assert torch.equal(out, torch.zeros_like(out))


# --- the shared inner loop ---------------------------------------------------------------------------------------
def test_lower_quantile_matches_torch_and_numpy():
    g = torch.Generator().manual_seed(0)
    for d in (11, 101, 768):
        v = torch.rand(4, d, generator=g)
        v[0, : d // 3] = math.inf
        for q in (0.05, 0.1, 0.3, 0.5, 0.7, 0.99, 1.0):
            ref = torch.stack([torch.quantile(r, q, interpolation="lower") for r in v])  # the authors' call
            assert torch.equal(lower_quantile(v, q), ref), (d, q)
            ref64 = np.quantile(v.double().numpy(), q, axis=1, method="lower")  # PAIR's call
            assert np.array_equal(lower_quantile(v, q, torch.float64).double().numpy(), ref64), (d, q)
    v = torch.arange(11.0).view(1, -1)  # the two ranks differ here: floor(float32(0.7) * 10) = 6, float64: 7
    assert lower_quantile(v, 0.7).item() == 6 and lower_quantile(v, 0.7, torch.float64).item() == 7


def test_guided_step_rows_hit_their_own_targets():
    g = torch.Generator().manual_seed(0)
    cur, end, grad = (torch.randn(3, 500, generator=g) for _ in range(3))
    total = l1_distance(cur, end)
    target = total * torch.tensor([0.9, 0.5, 0.0], dtype=torch.float64)
    info = {}
    new = guided_step(cur, end, grad, target, 0.1, info=info)
    assert torch.allclose(l1_distance(new, end), target, rtol=1e-6, atol=1e-5)
    assert info["passes"] >= 10  # the target 0 needs every feature: about 1/fraction passes
    for i in range(3):  # rows are independent
        alone = guided_step(cur[i:i + 1], end[i:i + 1], grad[i:i + 1], target[i:i + 1], 0.1)
        assert torch.equal(alone, new[i:i + 1])
    # features moved first are those with the smallest |grad|: row 0 moved only low-|grad| features
    moved = (new[0] != cur[0])
    assert grad[0].abs()[moved].max() <= grad[0].abs()[~moved].min()


def test_guided_step_partial_move_hook_and_drift():
    g = torch.Generator().manual_seed(0)
    cur, end, grad = (torch.randn(2, 64, generator=g) for _ in range(3))
    calls = []

    def hook(c, e, gamma, mask):
        calls.append((gamma.clone(), mask.clone()))
        return lerp_move(c, e, gamma, mask)

    target = l1_distance(cur, end) * 0.7
    new = guided_step(cur, end, grad, target, 0.25, partial_move=hook)
    assert torch.equal(new, guided_step(cur, end, grad, target, 0.25))
    assert calls and all(((gm >= 0) & (gm <= 1)).all() for gm, _ in calls)
    # a target a hair above the current distance (float drift, gamma < 0): no move, no crash (MA-GIG asserted)
    drift = l1_distance(cur, end) * (1 + 1e-7)
    assert torch.equal(guided_step(cur, end, grad, drift, 0.1), cur)
    # unclamped (for hooks that can overshoot, e.g. MA-GIG's slerp): a negative gamma moves back onto the target
    back = guided_step(cur, end, grad, drift, 0.1, clamp_gamma=False)
    assert not torch.equal(back, cur)
    assert torch.allclose(l1_distance(back, end), drift, rtol=1e-6)


@pytest.mark.parametrize("bad", [dict(fraction=0), dict(fraction=1.5), dict(fraction=-0.1), dict(fraction=True),
                                 dict(schedule="paper"), dict(n_steps=1)])
def test_rejects_bad_values(bad):
    with pytest.raises(ConfigError) as err:
        attribution.build_method("guided_ig", **bad)
    key = next(iter(bad))
    assert key in str(err.value)
    if key == "fraction":
        assert "(0, 1]" in str(err.value)


def test_config_file_builds_with_paper_defaults():
    import yaml

    cfg = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs/method/guided_ig.yaml").read_text())
    m = attribution.build_method(**cfg)
    assert (m.n_steps, m.fraction, m.schedule, m.baseline, m.objective) == (200, 0.1, "authors", "black", "prob")
    assert m.cost() == {"fb": 199, "f": 1}
