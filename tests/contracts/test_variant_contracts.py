"""The method contracts for variants (a method under its modifiers): float32 maps of the input, completeness where
the variant is a path, counted classifier passes equal to cost(), a batch equal to each image alone and to a chunked
run, and a readable variant name and label. One table of cases, as the registry-driven contracts."""
import pytest
import torch
from helpers.models import MEAN, STD, SmoothNet, normalized_images, tiny_kl

import attribution
from attribution import PassCounter
from attribution.vae import VAEAdapter

#: (method, options, noise, post, variant name, label): every modifier at least once, over paths of every kind
VARIANTS = [
    ("ig", {"integration": "idgi"}, None, None, "ig+idgi", "IG + IDGI"),
    ("blur_ig", {"integration": "idgi"}, None, None, "blur_ig+idgi", "BIG + IDGI"),
    ("guided_ig", {"integration": "idgi"}, None, None, "guided_ig+idgi", "GIG + IDGI"),
    ("ma_gig", {"integration": "idgi"}, None, None, "ma_gig+idgi", "MA-GIG + IDGI"),
    ("ig", {"baseline": "expected", "n_samples": 3}, None, None, "ig+eg", "IG + EG"),
    ("sig", {"baseline": "expected", "n_samples": 2}, None, None, "sig+eg", "SIG + EG"),
    ("eig", {"baseline": "expected", "n_samples": 2}, None, None, "eig+eg", "EIG + EG"),
    ("ig", {"rule": "gausslegendre"}, None, None, "ig+gausslegendre", "IG (GL)"),
    ("sig", {"rule": "trapezoid", "spacing": "adaptive"}, None, None, "sig+trapezoid+adaptive",
     "SIG (trapezoid, adaptive)"),
    ("ig", {}, {"kind": "smoothgrad", "samples": 3}, None, "ig+sg", "IG (SG)"),
    ("ma_gig", {}, {"kind": "vargrad", "samples": 2}, None, "ma_gig+vg", "MA-GIG (VG)"),
    ("grad_input", {}, {"kind": "smoothgrad_sq", "samples": 2}, None, "grad_input+sg2", "G×I (SG²)"),
    ("ig", {}, None, {"kind": "xrai"}, "ig+xrai", "IG + XRAI"),
    ("guided_ig", {"integration": "idgi"}, {"kind": "smoothgrad", "samples": 2}, {"kind": "xrai"},
     "guided_ig+idgi+sg+xrai", "GIG + IDGI (SG) + XRAI"),
]
IDS = [v[4] for v in VARIANTS]


@pytest.fixture(scope="module")
def vae():
    return VAEAdapter(tiny_kl(), mean=MEAN, std=STD)


def build(case, vae, **extra):
    name, options, noise, post = case[:4]
    kw = {"n_steps": 5, "mean": MEAN, "std": STD, **options, **extra}
    if name == "grad_input":
        kw.pop("n_steps")
    if attribution.method_info(name).needs_vae:
        kw["vae"] = vae
    method = attribution.build_method(name, noise=noise, post=post, **kw)
    base = getattr(method, "method", method)
    base = getattr(base, "method", base)
    if getattr(base, "needs_references", False):
        base.set_references(normalized_images(4, 16, seed=7))
    return method


def data(n=3):
    return normalized_images(n, 16, seed=1), torch.arange(n) % 5


@pytest.mark.parametrize("case", VARIANTS, ids=IDS)
def test_variant_name_and_label(case):
    name, options, noise, post, variant, label = case
    assert attribution.variant_name(name, options, noise, post) == variant
    assert attribution.variant_display(variant) == label


@pytest.mark.parametrize("case", VARIANTS, ids=IDS)
def test_variant_maps_completeness_passes_and_batch_invariance(case, vae):
    x, y = data()
    model = SmoothNet().eval()
    method = build(case, vae)
    out = method.attribute(model, x, y)
    assert out.attr.shape == x.shape and out.attr.dtype == torch.float32 and torch.isfinite(out.attr).all()
    assert (out.completeness is not None) == bool(method.is_path)
    with PassCounter(model) as pc:
        method(model, x, y)
    cost = method.cost(16, 16)
    assert pc.fb / len(x) == cost["fb"] and pc.f / len(x) == cost["f"], (pc.fb / len(x), pc.f / len(x), cost)
    scale = out.attr.abs().max().clamp_min(1e-12)
    chunked = build(case, vae, max_batch=2)(model, x, y)
    assert (chunked - out.attr).abs().max() / scale < 1e-5
    alone = torch.cat([method(model, x[i:i + 1], y[i:i + 1]) for i in range(len(x))])
    assert (alone - out.attr).abs().max() / scale < 1e-5
