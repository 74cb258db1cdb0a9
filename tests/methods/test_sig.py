"""Spectral Integrated Gradients: path geometry, gates, component order, band order, the authors' per-image
algorithm (benchmarks/reference/sig.py, from docs/upstream_methods.md section 3), batching and pass counts."""
import math
from pathlib import Path

import pytest
import torch
from helpers.models import MEAN, STD

import attribution
from attribution import ConfigError, PassCounter
from attribution.engine.spectral import decompose, gate
from attribution.registry import option_parameters
from benchmarks.reference import authors_sig

MODES = [("svd", "per_channel"), ("svd", "joint"), ("dct", "per_channel"), ("wavelet", "per_channel"),
         ("laplacian", "per_channel")]
GATINGS = ["linear", "cosine", "sigmoid", "step"]


def _norm(pix):
    return (pix - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def _black(x):
    return _norm(torch.zeros_like(x))


def _images(n=3, h=16, w=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return _norm(torch.rand(n, 3, h, w, generator=g))


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def _sig(**kw):
    return attribution.build_method("sig", mean=MEAN, std=STD, **kw)


# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,channel_mode", MODES + [("dct", "joint"), ("wavelet", "joint")])
def test_overlap_one_is_ig(smooth_model, mode, channel_mode):
    x, y = _images(), torch.tensor([0, 1, 2])
    ig = attribution.build_method("ig", n_steps=16, mean=MEAN, std=STD)(smooth_model, x, y)
    sig = _sig(n_steps=16, overlap=1.0, spectral_mode=mode, channel_mode=channel_mode)(smooth_model, x, y)
    assert _rel(sig, ig) < 1e-5


@pytest.mark.parametrize("mode,channel_mode", MODES)
@pytest.mark.parametrize("shape", [(16, 16), (12, 20), (15, 9), (64, 48)])
def test_decomposition_invertible_and_path_endpoints(mode, channel_mode, shape):
    x = _images(2, *shape)
    b = _black(x)
    dec = decompose(x - b, mode, channel_mode, 4, 4)
    full = dec.reconstruct(torch.ones((dec.strength.shape[0], 1) + tuple(dec.strength.shape[1:])))[:, 0]
    assert torch.allclose(full, x - b, atol=2e-5 * (x - b).abs().max())
    zero = dec.reconstruct(torch.zeros((dec.strength.shape[0], 1) + tuple(dec.strength.shape[1:])))[:, 0]
    assert torch.equal(zero, torch.zeros_like(x))
    for gating in GATINGS:
        for order in ("coarse_to_fine", "authors"):
            m = _sig(n_steps=7, spectral_mode=mode, channel_mode=channel_mode, gating=gating, band_order=order)
            p = m.path(x)
            assert p.shape == (2, 7) + x.shape[1:]
            assert torch.equal(p[:, 0], b)  # every gate is exactly 0 at alpha = 0
            assert torch.allclose(p[:, -1], x, atol=2e-5 * (x - b).abs().max())


def test_gates_against_formulas():
    s = torch.tensor([1.0, 0.93, 0.71, 0.5, 0.37, 0.12, 0.0])
    alphas = torch.tensor([0.0, 0.04, 0.13, 0.29, 0.47, 0.61, 0.83, 0.97, 1.0], dtype=torch.float64)
    for w in (0.4, 0.25, 0.9):
        for gating in GATINGS:
            got = gate(s[None], alphas, w, gating, 12.0)[0]
            for i, a in enumerate(alphas.tolist()):
                for j, sj in enumerate(s.tolist()):
                    p = min(1.0, max(0.0, (a - (1 - w) * (1 - sj)) / w))
                    sg = lambda t: 1 / (1 + math.exp(-t))
                    want = {"linear": p, "cosine": 0.5 - 0.5 * math.cos(math.pi * p),
                            "sigmoid": (sg(12 * (p - 0.5)) - sg(-6)) / (sg(6) - sg(-6)),
                            "step": float(p >= 0.5)}[gating]
                    assert abs(got[i, j].item() - want) < 1e-6, (w, gating, a, sj)
    # the top component ramps over [0, w]; a zero-strength component over [1 - w, 1]
    g = gate(torch.tensor([[1.0, 0.0]]), torch.tensor([0.2, 0.4, 0.6, 0.8]), 0.4)[0]
    assert torch.allclose(g, torch.tensor([[0.5, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.5]]), atol=1e-6)
    # the hard step at overlap ~ 0: 1[alpha >= 1 - strength]
    for w in (0.0, 1e-9):
        h = gate(s[None], alphas, w, "cosine")[0]
        want = (alphas.float()[:, None] >= (1 - s)[None]).float()
        assert torch.equal(h, want)


def test_hard_step_path_jumps():
    x = _images(1)
    m = _sig(n_steps=11, overlap=0.0)
    p = m.path(x)
    dec = m.decompose(x - _black(x))
    for k in range(11):
        on = (k / 10 >= 1 - dec.strength).float()  # [1,C,K]
        want = _black(x) + dec.reconstruct(on[:, None])[:, 0]
        assert torch.allclose(p[:, k], want, atol=1e-6)
    assert not torch.equal(p[:, 0], _black(x))  # strength-1 components are on at alpha = 0 (documented)


def test_svd_strength_is_relative_to_the_same_channel():
    x = _images(2, 16, 12)
    d = x - _black(x)
    dec = decompose(d, "svd", "per_channel")
    for i in range(2):
        for c in range(3):
            s = torch.linalg.svdvals(d[i, c])
            assert torch.allclose(dec.strength[i, c], s / s[0], atol=1e-6)
    joint = decompose(d, "svd", "joint")
    s = torch.linalg.svdvals(d[0].reshape(48, 12))
    assert torch.allclose(joint.strength[0], s / s[0], atol=1e-6) and joint.strength.shape == (2, 12)


def test_low_rank_image_largest_component_first():
    g = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(3, 16, 2, generator=g))
    v, _ = torch.linalg.qr(torch.randn(3, 16, 2, generator=g))
    big = 3.0 * u[..., :1] @ v[..., :1].transpose(1, 2)
    small = 1.0 * u[..., 1:] @ v[..., 1:].transpose(1, 2)
    b = _black(torch.zeros(1, 3, 16, 16))
    x = b + (big + small)[None]
    m = _sig(n_steps=5, overlap=0.4)
    dec = m.decompose(x - b)
    assert torch.allclose(dec.strength[0, :, :2], torch.tensor([1.0, 1 / 3]).expand(3, 2), atol=1e-5)
    assert dec.strength[0, :, 2:].abs().max() < 1e-5
    # small starts at (1-0.4)(1-1/3) = 0.4: at alpha=0.3 only the large one is on (at 0.3/0.4 = 0.75)
    p = m.path(x, [0.3, 0.5, 0.7, 0.8])[0] - b[0]
    assert torch.allclose(p[0], 0.75 * big, atol=1e-5)
    assert torch.allclose(p[1], big + 0.25 * small, atol=1e-5)
    assert torch.allclose(p[2], big + 0.75 * small, atol=1e-5)
    assert torch.allclose(p[3], big + small, atol=1e-5)  # the rest (strength 0) is zero anyway


@pytest.mark.parametrize("mode,n_comp,s_authors", [("wavelet", 13, 9 / 12), ("laplacian", 5, 0.75)])
def test_band_order(mode, n_comp, s_authors):
    """A pixel checkerboard lives only in the finest band (Haar HH of level 0 / the finest Laplacian residual):
    the authors give it a high strength (finest after the low-pass), coarse_to_fine gives it strength 0."""
    i = torch.arange(16)
    pattern = ((-1.0) ** (i[:, None] + i[None, :])).expand(1, 3, 16, 16)
    b = _black(pattern)
    x = b + 0.5 * pattern
    alphas = torch.linspace(0, 1, 11, dtype=torch.float64)
    for order, strength in (("authors", s_authors), ("coarse_to_fine", 0.0)):
        m = _sig(spectral_mode=mode, band_order=order, overlap=0.4)
        assert m.decompose(x - b).num_components() == n_comp
        frac = ((m.path(x, alphas) - b.unsqueeze(1)) / (0.5 * pattern.unsqueeze(1)))[0, :, 0]  # [S,H,W]
        want = gate(torch.tensor([[strength]]), alphas, 0.4)[0, :, 0]
        assert torch.allclose(frac, want.view(-1, 1, 1).expand_as(frac), atol=1e-5), order
    # a coarse pattern (8x8 blocks) is the opposite case: early under coarse_to_fine, late for the authors
    block = ((-1.0) ** (i[:, None] // 8 + i[None, :] // 8)).expand(1, 3, 16, 16)
    xb = b + 0.5 * block
    mid = torch.tensor([0.5], dtype=torch.float64)
    c2f = (_sig(spectral_mode=mode).path(xb, mid) - b.unsqueeze(1)).norm()
    auth = (_sig(spectral_mode=mode, band_order="authors").path(xb, mid) - b.unsqueeze(1)).norm()
    assert c2f > auth + 0.1 * (xb - b).norm()


GATING_CASES = [(mode, cm, "linear", 0.4) for mode, cm in MODES] + [
    ("svd", "per_channel", "cosine", 0.3), ("svd", "per_channel", "sigmoid", 0.5), ("dct", "per_channel", "step", 0.4),
    ("wavelet", "per_channel", "sigmoid", 0.2), ("svd", "joint", "cosine", 0.6)]


@pytest.mark.parametrize("mode,channel_mode,gating,overlap", GATING_CASES)
def test_matches_authors_per_image_algorithm(smooth_model, mode, channel_mode, gating, overlap):
    x, y = _images(2), torch.tensor([3, 1])
    n = 9
    band_order = "authors"
    ours = _sig(n_steps=n, overlap=overlap, spectral_mode=mode, channel_mode=channel_mode, gating=gating,
                band_order=band_order, max_batch=5)(smooth_model, x, y)
    # the authors' SpectralPathGenerator + compute_ig, one image at a time (benchmarks/reference/sig.py)
    ref = torch.stack([authors_sig(smooth_model, x[i], _black(x[i:i + 1])[0], int(y[i]), n, overlap, mode,
                                   channel_mode, gating) for i in range(len(x))])
    assert _rel(ours, ref) < 1e-5


@pytest.mark.parametrize("mode,channel_mode", [("svd", "per_channel"), ("svd", "joint"), ("wavelet", "per_channel")])
def test_batch_and_chunk_invariance(smooth_model, mode, channel_mode):
    x, y = _images(3), torch.tensor([0, 1, 2])
    full = _sig(n_steps=12, spectral_mode=mode, channel_mode=channel_mode)(smooth_model, x, y)
    alone = torch.cat([_sig(n_steps=12, spectral_mode=mode, channel_mode=channel_mode)(smooth_model, x[i:i + 1],
                                                                                      y[i:i + 1]) for i in range(3)])
    assert _rel(full, alone) < 1e-5
    for mb in (1, 4, 7, 100):
        chunked = _sig(n_steps=12, spectral_mode=mode, channel_mode=channel_mode, max_batch=mb)(smooth_model, x, y)
        assert _rel(chunked, full) < 1e-5


def test_pass_count_equals_cost(smooth_model, images):
    x, y = images
    m = _sig(n_steps=20, max_batch=7, spectral_mode="dct")
    with PassCounter(smooth_model) as pc:
        m(smooth_model, x, y)
    assert m.cost() == {"fb": 19, "f": 1}
    assert pc.fb == m.cost()["fb"] * len(x) and pc.f == m.cost()["f"] * len(x)


def test_completeness_at_200_steps(smooth_model, images):
    x, y = images
    out = _sig().attribute(smooth_model, x, y)
    assert out.attr.shape == x.shape and out.attr.dtype == torch.float32
    assert (out.completeness < 1e-2).all(), out.completeness
    coarse = _sig(n_steps=6).attribute(smooth_model, x, y)
    assert (coarse.completeness > out.completeness).all()


@pytest.mark.parametrize("bad,match", [
    ({"overlap": -0.1}, "overlap"), ({"overlap": 1.5}, r"\[0, 1\]"), ({"overlap": float("nan")}, "overlap"),
    ({"overlap": "0.4"}, "overlap"), ({"spectral_mode": "fft"}, "svd.*dct.*wavelet.*laplacian"),
    ({"channel_mode": "rgb"}, "per_channel.*joint"), ({"gating": "tanh"}, "linear.*cosine.*sigmoid.*step"),
    ({"band_order": "fine"}, "coarse_to_fine.*authors"), ({"gating_sigmoid_k": 0}, "gating_sigmoid_k"),
    ({"wavelet_levels": 0}, "wavelet_levels"), ({"laplacian_levels": 2.5}, "laplacian_levels"),
    ({"n_steps": 1}, "n_steps")])
def test_rejects_bad_values(bad, match):
    with pytest.raises(ConfigError, match=match):
        attribution.build_method("sig", **bad)


def test_config_matches_defaults():

    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[2] / "configs/method/sig.yaml"))
    assert cfg.pop("name") == "sig"
    params = option_parameters(type(attribution.build_method("sig")))
    assert set(cfg) == set(params) - {"mean", "std"}
    assert all(params[k].default == v for k, v in cfg.items())
    m = attribution.build_method("sig", **cfg)
    assert (m.n_steps, m.overlap, m.spectral_mode, m.channel_mode, m.gating) == (
        200, 0.4, "svd", "per_channel", "linear")
