"""Blur IG: the batched blur, agreement with the authors' per-image loop and with PAIR saliency's BlurIG,
path endpoints, batch/chunk invariance, pass counts and config validation.

Measured (SmoothNet, 3x16x16 and 3x32x32 images, CPU float32):
- blur_many vs torchvision gaussian_blur: <= 2.5e-6 absolute on [0,1] pixels (sigma up to 9.9, 32x32).
- ours vs the authors' per-image loop (torchvision blur in raw space + compute_ig over N+1 points), N=20 and 200:
  <= 2.1e-6 relative (max|diff| / max|ref|).
- PAIR ``BlurIG`` takes the gradient at the *less* blurred end and a finite-difference d blur / d sigma. Given our
  blur and ``grad_step`` = max_sigma/N it computes exactly the right Riemann sum over our path (<= 4e-7); our left
  sum then differs by O(1/N): relative L2 4.3% (N=20), 1.2% (N=80), 0.46% (N=200) at max_sigma 2.9, 32x32.
  Unmodified PAIR (scipy gaussian_filter, zero padding, radius 4 sigma) is a different path: relative L2
  0.34-0.35, correlation 0.94.
"""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.models import MEAN, STD, LinearNet, SmoothNet

import attribution
from attribution import ConfigError, PassCounter
from attribution.engine.blur import blur_kernel_size, blur_many
from attribution.engine.normalize import gaussian_blur
from benchmarks.reference import authors_blur_ig

M = torch.tensor(MEAN).view(1, 3, 1, 1)
S = torch.tensor(STD).view(1, 3, 1, 1)


def make_data(size=16):
    g = torch.Generator().manual_seed(1)
    pix = torch.rand(3, 3, size, size, generator=g)
    return pix, (pix - M) / S, torch.tensor([0, 1, 2])


def rel_err(a, b):
    """Per image max|a - b| / max|b|."""
    a, b = a.double(), b.double()
    return ((a - b).flatten(1).abs().amax(1) / b.flatten(1).abs().amax(1)).tolist()


def rel_l2(a, b):
    a, b = a.double(), b.double()
    return ((a - b).flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1)).tolist()


def prob_grad(model, x, y):
    xr = x.detach().clone().requires_grad_(True)
    p = torch.softmax(model(xr), -1).gather(1, y.view(-1, 1)).sum()
    return torch.autograd.grad(p, xr)[0]


# --- the blur ----------------------------------------------------------------------------------------------------
def test_blur_many_equals_torchvision_and_engine_blur():
    from torchvision.transforms.functional import gaussian_blur as tv_blur

    pix, _, _ = make_data(32)
    sigmas = [0.0, 0.3, 0.5, 1.0, 2.7, 5.0, 9.9, 20.0]  # 20 needs the replicate fallback at 32x32
    out = blur_many(pix, sigmas)
    assert out.shape == (3, len(sigmas), 3, 32, 32)
    assert torch.equal(out[:, 0], pix)
    for j, s in enumerate(sigmas):
        assert torch.allclose(out[:, j], gaussian_blur(pix, s), atol=1e-6), s
        k = blur_kernel_size(s)
        if s > 0 and k // 2 < 32:
            assert (out[:, j] - tv_blur(pix, [k, k], [s, s])).abs().max() < 5e-6, s
    assert [blur_kernel_size(s) for s in (0.1, 0.5, 1.0, 35.0)] == [3, 5, 7, 211]


# --- agreement ---------------------------------------------------------------------------------------------------
def test_matches_authors_per_image_loop():
    _, x, y = make_data(16)
    model = SmoothNet().eval()
    n, max_sigma = 20, 4.0  # k <= 25: torchvision's reflect padding is valid on 16x16
    ours = attribution.build_method("blur_ig", n_steps=n, max_sigma=max_sigma, mean=MEAN, std=STD)(model, x, y)
    # the authors' BlurPathGenerator + compute_ig, one image at a time: torchvision blur of the raw image, N+1 points
    # from sigma max to 0, a gradient at every point (the last unused), left sum (benchmarks/reference/blur_ig.py)
    ref = torch.stack([authors_blur_ig(model, x[i], int(y[i]), n, max_sigma, mean=MEAN, std=STD)
                       for i in range(len(x))])
    err = rel_err(ours, ref)
    assert max(err) < 1e-5, err


def _pair_blur_ig(model, pix, y, n, max_sigma, grad_step, blur="ours"):
    """saliency.core.BlurIG on raw HWC pixels, the model normalising inside; the blur optionally replaced by ours."""
    import saliency.core.blur_ig as pair_mod
    from saliency.core import INPUT_OUTPUT_GRADIENTS

    def our_blur(image, sigma):
        if sigma == 0:
            return image
        t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].double()
        return blur_many(t, [sigma])[0, 0].numpy().transpose(1, 2, 0)

    orig = pair_mod.gaussian_blur
    if blur == "ours":
        pair_mod.gaussian_blur = our_blur
    try:
        refs = []
        for i in range(pix.shape[0]):
            def call(batch, call_model_args=None, expected_keys=None, i=i):
                raw = torch.as_tensor(batch, dtype=torch.float32).permute(0, 3, 1, 2)
                g = prob_grad(model, (raw - M) / S, y[i:i + 1].expand(len(batch))) / S  # d f / d raw pixels
                return {INPUT_OUTPUT_GRADIENTS: g.permute(0, 2, 3, 1).numpy()}

            mask = pair_mod.BlurIG().GetMask(pix[i].permute(1, 2, 0).double().numpy(), call, max_sigma=max_sigma,
                                             steps=n, grad_step=grad_step, batch_size=n)
            refs.append(torch.from_numpy(mask.transpose(2, 0, 1).copy()))
    finally:
        pair_mod.gaussian_blur = orig
    # attributions w.r.t. raw pixels equal those w.r.t. the normalised input (grad * std times delta / std)
    return torch.stack(refs)


def test_agrees_with_saliency_blur_ig():
    pix, x, y = make_data(32)
    model = SmoothNet().eval()
    max_sigma = 2.9
    errs = {}
    for n in (20, 80):
        method = attribution.build_method("blur_ig", n_steps=n, max_sigma=max_sigma, mean=MEAN, std=STD)
        ours = method(model, x, y)
        pair = _pair_blur_ig(model, pix, y, n, max_sigma, grad_step=max_sigma / n)
        # with grad_step = the sigma spacing, PAIR's sum is the *right* Riemann sum over exactly our path
        sig = method.sigmas()[::-1]
        pts = (blur_many(pix, sig) - M.unsqueeze(1)) / S.unsqueeze(1)
        pts[:, -1] = x
        grads = torch.stack([prob_grad(model, pts[:, j], y) for j in range(1, n + 1)], 1)
        right = (grads * (pts[:, 1:] - pts[:, :-1])).sum(1)
        assert max(rel_err(pair, right)) < 1e-5
        errs[n] = rel_l2(ours, pair)
    # left (ours, the authors') vs right sum: an O(1/N) gap (measured 4.3% at N=20, 1.2% at N=80)
    assert max(errs[80]) < 0.02, errs
    assert all(a > 3 * b for a, b in zip(errs[20], errs[80])), errs
    # PAIR as shipped blurs differently (scipy, zero padding): same picture, not the same numbers
    shipped = _pair_blur_ig(model, pix, y, 20, max_sigma, grad_step=0.01, blur="scipy")
    corr = [float(np.corrcoef(a.flatten(), b.flatten())[0, 1]) for a, b in zip(ours.double(), shipped)]
    assert min(corr) > 0.85, corr


# --- path and completeness ---------------------------------------------------------------------------------------
def test_path_endpoints_and_sigmas():
    pix, x, y = make_data(16)
    model = SmoothNet().eval()
    n, max_sigma = 10, 3.0
    method = attribution.build_method("blur_ig", n_steps=n, max_sigma=max_sigma, max_batch=3, mean=MEAN, std=STD)
    assert method.sigmas() == [i * max_sigma / n for i in range(n + 1)]
    pts = []
    handle = model.register_forward_pre_hook(
        lambda mod, args: pts.append(args[0].detach().clone()) if args[0].requires_grad else None)
    try:
        out = method.attribute(model, x, y)
    finally:
        handle.remove()
    first = (gaussian_blur(pix, max_sigma) - M) / S  # the most blurred image, in normalised space
    assert torch.allclose(pts[0], first, atol=1e-6)  # max_batch=3: one step of the 3 images per chunk
    f = torch.softmax(model(torch.cat([first, x])), -1)
    assert torch.allclose(out.f_start, f[:3].gather(1, y.view(-1, 1)).squeeze(1), atol=1e-7)
    assert torch.allclose(out.f_end, f[3:].gather(1, y.view(-1, 1)).squeeze(1), atol=1e-7)
    # the path ends at x exactly: with a linear objective the left sum telescopes to f(x) - f(blur(x))
    lin = LinearNet(shape=(3, 16, 16)).eval()
    lin_out = attribution.build_method("blur_ig", n_steps=n, max_sigma=max_sigma, objective="logit", mean=MEAN,
                                       std=STD).attribute(lin, x, y)
    assert (lin_out.completeness < 1e-5).all(), lin_out.completeness
    # sqrt spacing: the largest sigma is sqrt(max_sigma)
    sq = attribution.build_method("blur_ig", n_steps=4, max_sigma=9.0, sqrt=True)
    assert sq.sigmas() == [math.sqrt(i * 9.0 / 4) for i in range(5)] and sq.sigmas()[-1] == 3.0


def test_completeness_shrinks_with_steps():
    _, x, y = make_data(16)
    model = SmoothNet().eval()
    kw = dict(max_sigma=4.0, mean=MEAN, std=STD)
    fine = attribution.build_method("blur_ig", n_steps=200, **kw).attribute(model, x, y)
    coarse = attribution.build_method("blur_ig", n_steps=20, **kw).attribute(model, x, y)
    assert (fine.completeness < coarse.completeness / 5).all(), (fine.completeness, coarse.completeness)


# --- batching ----------------------------------------------------------------------------------------------------
def test_batch_and_chunk_invariance(tiny_timm):
    _, x, y = make_data(16)
    kw = dict(n_steps=20, max_sigma=4.0, mean=MEAN, std=STD)
    batch = attribution.build_method("blur_ig", **kw)(tiny_timm, x, y)
    alone = torch.cat([attribution.build_method("blur_ig", **kw)(tiny_timm, x[i:i + 1], y[i:i + 1])
                       for i in range(len(x))])
    assert max(rel_err(batch, alone)) < 1e-5
    for mb in (4, 7):
        chunked = attribution.build_method("blur_ig", max_batch=mb, **kw)(tiny_timm, x, y)
        assert max(rel_err(chunked, batch)) < 1e-5


def test_pass_count_equals_cost():
    _, x, y = make_data(16)
    model = SmoothNet().eval()
    method = attribution.build_method("blur_ig", n_steps=12, max_sigma=2.0, max_batch=5)
    with PassCounter(model) as pc:
        method(model, x, y)
    cost = method.cost(16, 16)
    assert cost == {"fb": 12, "f": 1}
    assert pc.fb == cost["fb"] * len(x) and pc.f == cost["f"] * len(x)


@pytest.mark.parametrize("bad", [dict(max_sigma=0), dict(max_sigma=-1.0), dict(max_sigma=float("nan")),
                                 dict(max_sigma=float("inf")), dict(max_sigma="35"), dict(sqrt="yes"),
                                 dict(n_steps=1), dict(objective="logprob")])
def test_rejects_bad_values(bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        attribution.build_method("blur_ig", **bad)


def test_rejects_a_baseline_option_saying_why():
    for option in ({"baseline": "black"}, {"baseline": "expected", "n_samples": 4}):
        with pytest.raises(TypeError, match="Blur IG has no baseline input"):
            attribution.build_method("blur_ig", **option)


def test_config_file_builds_with_paper_defaults():
    import yaml

    cfg = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs/method/blur_ig.yaml").read_text())
    m = attribution.build_method(**cfg)
    assert (m.n_steps, m.max_sigma, m.sqrt, m.objective) == (200, 35.0, False, "prob")
    assert m.sigmas()[-1] == 35.0 and m.cost() == {"fb": 200, "f": 1}
