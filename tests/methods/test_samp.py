"""SAMP: batched implementation vs the authors' per-image loop (benchmarks.reference; upstream §2.10)."""
import math

import numpy as np
import pytest
import torch
from helpers.models import MEAN, STD, LinearNet, TanhNet, normalized_images

import attribution
from attribution import PassCounter
from attribution.methods.samp import samp_blur, samp_kernel
from benchmarks.reference import authors_samp


def _black():
    return (torch.zeros(1, 3, 1, 1) - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


@pytest.mark.parametrize("kw,scale", [
    (dict(), 0.3),
    (dict(step_size=3, n_frag=4, momentum=0.5), 0.3),
    (dict(direction="insertion", n_frag=40), 0.3),  # most moves scaled down to the step bound
    (dict(direction="deletion"), 0.01),  # tiny prob gradients: the +1e-6 slack selects many pixels at once
])
def test_samp_matches_the_authors_per_image_loop(kw, scale):
    model, x, y = TanhNet(scale=scale).eval(), normalized_images(), torch.tensor([0, 1, 2])
    m = attribution.build_method("samp", mean=MEAN, std=STD, max_batch=4, **kw)
    out = m.attribute(model, x, y)
    lines = m.lines
    # ``SAMPExplainer._generate_cam`` one image at a time (benchmarks/reference/samp.py)
    runs = [authors_samp(model, x[b], int(y[b]), lines, kw.get("step_size", 5), kw.get("n_frag", 5),
                         momen=kw.get("momentum"), mean=MEAN, std=STD) for b in range(len(x))]
    ref, iters = torch.stack([r.attr for r in runs]), torch.tensor([r.iterations for r in runs])
    assert out.attr.shape == x.shape and out.attr.dtype == torch.float32
    assert torch.allclose(out.attr, ref, rtol=1e-5, atol=1e-5 * ref.abs().max())
    for j, line in enumerate(lines):
        assert torch.equal(out.extras[f"{line}_iterations"], iters[:, j])


def test_samp_blur_kernel_is_scipy_gaussian_of_delta():
    from scipy.ndimage import gaussian_filter

    k = samp_kernel(3, 11, 5)
    d = np.zeros((11, 11))
    d[5, 5] = 1
    assert k.shape == (3, 3, 11, 11) and abs(float(k[0, 0].sum()) - 1) < 1e-6
    assert torch.allclose(k[1, 1], torch.from_numpy(gaussian_filter(d, 5)).float()) and k[0, 1].abs().sum() == 0
    x = torch.ones(1, 3, 12, 12)
    blurred = samp_blur(x)
    assert torch.allclose(blurred[0, :, 6, 6], torch.ones(3), atol=1e-6)  # mass 1 inside the window
    assert (blurred[0, :, 0, 0] < 0.5).all()  # zero padding darkens the corners


def test_samp_lines_end_at_endpoints_iteration_bound_channels_and_passes():
    model, x, y = TanhNet().eval(), normalized_images(n=3, size=10), torch.tensor([0, 1, 2])
    m = attribution.build_method("samp", mean=MEAN, std=STD)
    with PassCounter(model) as pc:
        out = m.attribute(model, x, y)
    e = out.extras
    bound = math.ceil(10 * 10 / 5) + 5 + 1
    assert m.iteration_bound(10, 10) == bound
    for line in ("deletion", "insertion"):
        assert e[f"{line}_finished"].all() and not e[f"{line}_stalled"].any()
        assert (e[f"{line}_end_gap"] < 1e-5).all()
        assert ((e[f"{line}_iterations"] >= 5) & (e[f"{line}_iterations"] <= bound)).all()
    # the deletion line ends at black, the insertion line at x: f at the ends says so
    f = lambda z: torch.softmax(model(z), -1)[torch.arange(3), y].detach()  # noqa: E731
    assert torch.allclose(e["deletion_f_end"], f(_black().expand_as(x)), atol=1e-5)
    assert torch.allclose(e["insertion_f_end"], f(x), atol=1e-5)
    assert torch.allclose(e["deletion_f_start"], f(x), atol=1e-6)
    assert torch.allclose(e["insertion_f_start"], f(samp_blur(x)), atol=1e-6)
    assert (out.attr == out.attr[:, :1]).all()  # one per-pixel map, broadcast to the channels
    cost = m.cost(10, 10)
    assert cost == {"fb": 2 * bound, "f": 2}
    assert pc.fb == int(e["deletion_iterations"].sum() + e["insertion_iterations"].sum())
    assert pc.fb <= cost["fb"] * 3 and pc.f == cost["f"] * 3
    assert all(p.grad is None for p in model.parameters())


def test_samp_line_completeness_by_construction():
    # exact where f is affine along every move (logit of a linear model): sum(cam_line) = f(end) - f(start)
    model, x, y = LinearNet(shape=(3, 8, 8)).eval(), normalized_images(), torch.tensor([0, 1, 2])
    out = attribution.build_method("samp", mean=MEAN, std=STD, objective="logit").attribute(model, x, y)
    e = out.extras
    for line in ("deletion", "insertion"):
        assert torch.allclose(e[f"{line}_sum"], e[f"{line}_f_end"] - e[f"{line}_f_start"], rtol=1e-4, atol=1e-4)
        assert (e[f"{line}_completeness"] < 1e-4).all()
    total = out.attr[:, 0].flatten(1).sum(1)  # deletion negated: (f(x) - f(black)) + (f(x) - f(blur x))
    expect = (e["deletion_f_start"] - e["deletion_f_end"]) + (e["insertion_f_end"] - e["insertion_f_start"])
    assert torch.allclose(total, expect, rtol=1e-4, atol=1e-4)


def test_samp_iteration_cap_and_reduction_norm():
    model, x, y = TanhNet().eval(), normalized_images(), torch.tensor([0, 1, 2])
    capped = attribution.build_method("samp", mean=MEAN, std=STD, max_iter=3)
    with PassCounter(model) as pc:
        out = capped.attribute(model, x, y)
    for line in ("deletion", "insertion"):
        assert (out.extras[f"{line}_iterations"] == 3).all() and not out.extras[f"{line}_finished"].any()
    assert pc.fb == 2 * 3 * 3 and capped.cost(8, 8) == {"fb": 6, "f": 2}
    norm = attribution.build_method("samp", mean=MEAN, std=STD, reduction="norm").attribute(model, x, y).attr
    assert norm.min() >= 0 and norm.max() <= 2 + 1e-6
    assert torch.allclose(norm.flatten(1).amax(1), torch.full((3,), 2.0), atol=0.5)  # each line spans [0, 1]


@pytest.mark.parametrize("bad", [dict(step_size=0), dict(step_size=-5), dict(step_size=2.5), dict(n_frag=0),
                                 dict(direction="up"), dict(reduction="mean"), dict(klen=10), dict(ksig=0),
                                 dict(momentum=1.5), dict(insertion_baseline="grey"), dict(max_iter=0),
                                 dict(objective="x")])
def test_samp_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        attribution.build_method("samp", **bad)
