"""Property-based tests (hypothesis) for the metrics and the path builders: random shapes (single pixels and
non-square sizes included), constant images, attributions with ties or all zero. Outputs must stay finite and in
their documented range, paths must start and end where they should, file and shard names must stay safe."""
from __future__ import annotations

import re
import string

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import attribution
from attribution.engine.guided import guided_step, l1_distance, l1_schedule
from attribution.engine.normalize import gaussian_blur
from attribution.engine.spectral import GATINGS, decompose, gate, spectral_offsets
from attribution.methods.ig import linear_points
from benchmarks.io.cache import _file_name
from benchmarks.io.store import run_stem
from benchmarks.run import parse_shard, shard_slice

SETTINGS = {"deadline": None, "database": None, "derandomize": True,
            "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
IMAGE_KINDS = ("random", "constant", "binary")
ATTR_KINDS = ("random", "all_equal", "few_levels", "one_hot", "zero", "negative")


class Net(nn.Module):
    """Any-size classifier: conv -> tanh -> global mean -> linear (named ``fc`` so IG2 finds its layer)."""

    def __init__(self, channels: int, classes: int = 4):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(channels, 6, 3, padding=1)
        self.fc = nn.Linear(6, classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(x)).mean((2, 3)))


@st.composite
def cases(draw, max_side: int = 9):
    """(model, x, attr, target): B images of C x H x W with the drawn image and attribution kinds."""
    b = draw(st.integers(1, 2))
    c = draw(st.sampled_from([1, 3]))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    kind = draw(st.sampled_from(IMAGE_KINDS))
    if kind == "random":
        x = torch.randn(b, c, h, w, generator=g)
    elif kind == "constant":
        x = torch.full((b, c, h, w), draw(st.floats(-2, 2, width=32, allow_subnormal=False)))
    else:
        x = (torch.rand(b, c, h, w, generator=g) > 0.5).float() * 2 - 1
    akind = draw(st.sampled_from(ATTR_KINDS))
    if akind == "random":
        a = torch.randn(b, c, h, w, generator=g)
    elif akind == "all_equal":
        a = torch.full((b, c, h, w), 0.5)
    elif akind == "few_levels":
        a = torch.randint(0, 3, (b, c, h, w), generator=g).float()
    elif akind == "one_hot":
        a = torch.zeros(b, c, h, w)
        a.view(b, -1)[:, draw(st.integers(0, c * h * w - 1))] = 1.0
    elif akind == "zero":
        a = torch.zeros(b, c, h, w)
    else:
        a = -torch.rand(b, c, h, w, generator=g)
    target = torch.randint(0, 4, (b,), generator=g)
    return Net(c).eval(), x, a, target


def _in_unit(v: torch.Tensor) -> bool:
    return bool(((v >= 0) & (v <= 1)).all())


# ------------------------------------------------------------------------------------------------ metrics
@settings(max_examples=40, **SETTINGS)
@given(case=cases(), fill=st.sampled_from(["mean", "zero", "blur", "avgpool"]), score=st.sampled_from(["hard", "soft"]))
def test_diffid_finite_and_in_range(case, fill, score):
    model, x, a, t = case
    r = attribution.build_metric("diffid", fill=fill, score=score)(model, x, a, t)
    for key in ("insertion", "deletion", "insertion_curve", "deletion_curve"):
        assert torch.isfinite(r[key]).all() and _in_unit(r[key]), key
    assert torch.isfinite(r["diffid"]).all() and bool((r["diffid"].abs() <= 1).all())
    torch.testing.assert_close(r["diffid"], r["insertion"] - r["deletion"], rtol=0, atol=1e-6)
    # only the ranking of |A| counts: positive rescaling and sign flips change nothing
    again = attribution.build_metric("diffid", fill=fill, score=score)(model, x, -3.5 * a, t)
    for key in r:
        torch.testing.assert_close(again[key], r[key])


@settings(max_examples=30, **SETTINGS)
@given(case=cases(), step=st.one_of(st.none(), st.integers(1, 20)),
       ins=st.sampled_from(["blur", "zero", "black"]), dele=st.sampled_from(["zero", "blur", "black"]))
def test_insertion_deletion_finite_and_in_range(case, step, ins, dele):
    model, x, a, t = case
    r = attribution.build_metric("insertion_deletion", step=step, insertion_substrate=ins,
                                 deletion_substrate=dele)(model, x, a, t)
    for key, v in r.items():
        assert torch.isfinite(v).all() and _in_unit(v), key
    # the deletion curve starts at the clean image, the insertion curve ends at it
    p = torch.softmax(model(x), 1).gather(1, t[:, None]).squeeze(1)
    torch.testing.assert_close(r["rise_deletion_curve"][:, 0], p, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(r["rise_insertion_curve"][:, -1], p, rtol=1e-5, atol=1e-6)


@settings(max_examples=30, **SETTINGS)
@given(case=cases(), baseline=st.sampled_from(["black", "mean", "blur"]))
def test_completeness_error_finite_and_non_negative(case, baseline):
    model, x, a, t = case
    r = attribution.build_metric("completeness", baseline=baseline, mean=(0.5,) * x.shape[1],
                                 std=(0.25,) * x.shape[1])(model, x, a, t)
    for v in r.values():
        assert torch.isfinite(v).all()
    assert bool((r["completeness_error"] >= 0).all())


@settings(max_examples=12, **SETTINGS)
@given(case=cases(max_side=8), saliency=st.sampled_from(["abs_sum", "sum_abs", "sum"]))
def test_pic_in_range_or_skipped_with_a_reason(case, saliency):
    model, x, a, t = case
    r = attribution.build_metric("pic", saliency=saliency, min_pred_value=0.0, num_data_points=50, workers=1,
                                 mean=(0.5,) * x.shape[1], std=(0.25,) * x.shape[1])(model, x, a, t)
    for key in ("sic", "aic"):
        kept = r[f"{key}_skip"] == 0
        assert torch.isfinite(r[key][kept]).all() and _in_unit(r[key][kept]), key
        assert torch.isnan(r[key][~kept]).all()  # skipped: NaN, and the code says why
        assert _in_unit(r[f"{key}_curve"][kept])


@pytest.mark.parametrize("shape", [(1, 7), (6, 1), (1, 2)])
def test_pic_blur_of_a_single_row_or_column(shape):
    """Found by the property above: Qhull cannot triangulate the pixels of a 1-pixel-high image (PAIR crashes too);
    the blur interpolates along the line instead."""
    from attribution.metrics.pic import blurred_image

    img = (np.arange(shape[0] * shape[1] * 3, dtype=np.uint8) * 7).reshape(*shape, 3)
    mask = np.zeros(shape, dtype=bool)
    out = blurred_image(img, mask)
    line, ref = out.reshape(-1, 3).astype(float), img.reshape(-1, 3).astype(float)
    expected = np.round(ref[0] + (ref[-1] - ref[0]) * np.linspace(0, 1, len(ref))[:, None])
    np.testing.assert_array_equal(line, expected)  # the two corners kept, a straight ramp between them


# ----------------------------------------------------------------------------------- methods on odd inputs
METHODS = [("ig", {"n_steps": 3}), ("grad_input", {}), ("guided_ig", {"n_steps": 3}),
           ("blur_ig", {"n_steps": 3, "max_sigma": 4.0}), ("sig", {"n_steps": 3, "spectral_mode": "svd"}),
           ("sig", {"n_steps": 3, "spectral_mode": "dct"}), ("sig", {"n_steps": 3, "spectral_mode": "wavelet"}),
           ("sig", {"n_steps": 3, "spectral_mode": "laplacian", "gating": "cosine"}), ("random", {})]


@settings(max_examples=25, **SETTINGS)
@given(case=cases(max_side=7), spec=st.sampled_from(METHODS))
def test_methods_give_finite_maps_of_the_input_shape(case, spec):
    model, x, _, t = case
    name, kw = spec
    out = attribution.build_method(name, **kw).attribute(model, x, t)
    assert out.attr.shape == x.shape and out.attr.dtype == torch.float32
    assert torch.isfinite(out.attr).all()
    if out.completeness is not None:
        assert bool((out.completeness[torch.isfinite(out.completeness)] >= 0).all())


# --------------------------------------------------------------------------------------------- path builders
@settings(max_examples=60, **SETTINGS)
@given(case=cases(), mode=st.sampled_from(["svd/per_channel", "svd/joint", "dct", "wavelet", "laplacian"]),
       overlap=st.floats(0.0, 1.0, allow_subnormal=False),
       gating=st.sampled_from(GATINGS), band=st.sampled_from(["coarse_to_fine", "authors"]))
def test_spectral_path_is_finite_and_ends_at_the_input(case, mode, overlap, gating, band):
    _, x, b, _ = case  # the "attribution" draw doubles as a baseline with ties / zeros
    spectral, _, channel = mode.partition("/")
    diff = x - b
    dec = decompose(diff, spectral, channel or "per_channel", band_order=band)
    alphas = torch.linspace(0, 1, 5)
    gates = gate(dec.strength, alphas, overlap, gating)
    assert torch.isfinite(gates).all() and _in_unit(gates)
    assert bool((gates.diff(dim=1) >= -1e-6).all())  # every component switches on monotonically
    off = spectral_offsets(dec, alphas, overlap, gating)
    assert off.shape == (x.shape[0], 5, *x.shape[1:]) and torch.isfinite(off).all()
    scale = diff.abs().amax().clamp_min(1.0)
    torch.testing.assert_close(off[:, -1], diff, rtol=0, atol=1e-4 * float(scale))  # alpha = 1: the input
    if overlap > 1e-6:  # a soft gate starts closed: alpha = 0 is the baseline
        assert float(off[:, 0].abs().max()) <= 1e-5 * float(scale)


@settings(max_examples=60, **SETTINGS)
@given(case=cases(), fraction=st.floats(0.01, 1.0, allow_subnormal=False),
       share=st.floats(0.0, 1.0, allow_subnormal=False),
       grad_kind=st.sampled_from(["random", "ties", "zero", "nan"]))
def test_guided_step_lands_on_its_l1_target_between_current_and_end(case, fraction, share, grad_kind):
    _, x, a, _ = case
    cur, end = a.flatten(1), x.flatten(1)
    gen = torch.Generator().manual_seed(cur.numel())
    noise = torch.randn(cur.shape, generator=gen)
    g = {"random": noise, "ties": torch.ones_like(cur), "zero": torch.zeros_like(cur),
         "nan": torch.where(noise > 0, torch.full_like(cur, float("nan")), noise)}[grad_kind]
    total = l1_distance(cur, end)
    target = total * share
    new = guided_step(cur, end, g, target, fraction)
    assert torch.isfinite(new).all()
    lo, hi = torch.minimum(cur, end), torch.maximum(cur, end)
    assert bool(((new >= lo - 1e-6) & (new <= hi + 1e-6)).all())  # each feature moves towards its end only
    tol = 1e-5 * float(total.max()) + 1e-6
    if grad_kind == "nan":  # features with a NaN gradient are never selected: it may stop short, never overshoot
        assert bool((l1_distance(new, end) >= target - tol).all())
    else:
        torch.testing.assert_close(l1_distance(new, end), target, rtol=1e-5, atol=tol)


@given(n=st.integers(2, 400))
@settings(max_examples=30, **SETTINGS)
def test_guided_schedule_and_straight_line_end_points(n):
    total = torch.tensor([3.0, 0.0], dtype=torch.float64)
    sched = torch.stack([l1_schedule(total, k, n) for k in range(n)])
    assert bool((sched.diff(dim=0) <= 0).all()) and bool((sched[-1] == 0).all()) and bool((sched >= 0).all())
    b, x = torch.zeros(1, 1, 2, 2), torch.arange(4.0).view(1, 1, 2, 2)
    pts = linear_points(b, x, torch.linspace(0, 1, n, dtype=torch.float64))
    assert torch.equal(pts[:, 0], b) and torch.equal(pts[:, -1], x)


@settings(max_examples=40, **SETTINGS)
@given(case=cases(), sigma=st.floats(0.0, 40.0, allow_subnormal=False))
def test_blur_path_points_stay_within_the_image_range(case, sigma):
    _, x, _, _ = case
    y = gaussian_blur(x, sigma)
    assert y.shape == x.shape and torch.isfinite(y).all()
    lo = x.flatten(2).amin(2)[..., None, None]
    hi = x.flatten(2).amax(2)[..., None, None]
    assert bool(((y >= lo - 1e-5) & (y <= hi + 1e-5)).all())  # a blur is a convex combination of the pixels


# ------------------------------------------------------------------------------ file names and shard slices
SAFE_FILE = re.compile(r"^[A-Za-z0-9._+=-]+$")
NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.+=-]{0,11}(_[A-Za-z0-9.+=-]{1,6}){0,2}", fullmatch=True)


@settings(max_examples=200, **SETTINGS)
@given(ids=st.lists(st.text(string.printable + "éß漢/\\:*?\"<>| ", min_size=0, max_size=200), min_size=2,
                    max_size=2, unique=True))
def test_cache_file_names_are_safe_bounded_and_distinct(ids):
    names = [_file_name(i) for i in ids]
    for n in names:
        assert SAFE_FILE.match(n) and n.endswith(".npz") and len(n.encode()) <= 255 and n not in (".", "..")
    assert names[0] != names[1]


@settings(max_examples=200, **SETTINGS)
@given(a=st.tuples(NAME, NAME, NAME, st.text("0123456789abcdef", min_size=10, max_size=10)),
       b=st.tuples(NAME, NAME, NAME, st.text("0123456789abcdef", min_size=10, max_size=10)))
def test_run_stems_are_safe_visible_and_distinct(a, b):
    sa, sb = run_stem(*a), run_stem(*b)
    for s in (sa, sb):
        assert SAFE_FILE.match(s) and not s.startswith(".")  # load_store skips hidden files
    assert (sa == sb) == (a == b)


@settings(max_examples=200, **SETTINGS)
@given(n_items=st.integers(0, 500), n=st.integers(1, 40))
def test_shard_slices_partition_the_ids(n_items, n):
    parts = [shard_slice(n_items, parse_shard(f"{i}/{n}")) for i in range(n)]
    flat = [k for p in parts for k in p]
    assert flat == list(range(n_items))  # disjoint, in order, nothing missing
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("bad", ["1/1", "-1/3", "3", "a/b", "1/0", "2/1", "", "1/2/3"])
def test_bad_shards_are_rejected(bad):
    with pytest.raises(ValueError, match="i/n"):
        parse_shard(bad)
