"""MA-GIG, EIG and Manifold IG on tiny diffusers VAEs: endpoints, slerp, the latent Guided IG step, agreement with the
authors' per-image loops, batch/chunk invariance, completeness, pass counts and option checks.

Measured (tiny AutoencoderKL 8/16 channels, SmoothNet, 3x16x16, CPU float32): the batched methods agree with the
authors' per-image loops (benchmarks/reference/latent.py) to ~1e-6 relative for MA-GIG and EIG, ~1e-4 for
MIG (Gauss-Seidel); Jacobi MIG is a different iteration (documented deviation).
"""
from pathlib import Path

import pytest
import torch
import yaml
from diffusers import AutoencoderKL, AutoencoderTiny
from helpers.models import MEAN, STD, LinearNet, SmoothNet, tiny_kl

import attribution
from attribution import ConfigError, PassCounter
from attribution.engine.guided import guided_step, native_lerp_move
from attribution.engine.quantile import lower_quantile_index
from attribution.engine.slerp import slerp, slerp_coefficients, slerp_move
from attribution.methods import METHODS
from attribution.registry import option_parameters
from attribution.vae import VAEAdapter, VAEPassCounter
from benchmarks.reference import authors_ma_gig, compute_ig, eig_path, ma_gig_path, mig_path
from benchmarks.reference import slerp as authors_slerp

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
M = torch.tensor(MEAN).view(1, 3, 1, 1)
S = torch.tensor(STD).view(1, 3, 1, 1)
LATENT = ("ma_gig", "eig", "mig")


@pytest.fixture(scope="module")
def vae():
    return VAEAdapter(tiny_kl(), mean=MEAN, std=STD)


@pytest.fixture
def data():
    pix = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    x = (pix - M) / S
    return x, torch.tensor([0, 1, 2]), (torch.zeros_like(x) - M) / S


def build(name, vae, **kw):
    return attribution.build_method(name, vae=vae, mean=MEAN, std=STD, **kw)


def rel_err(a, b):
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / b.abs().max()).item()


def authors_ig(model, paths, y):
    """The authors' ``compute_ig`` on each image's path [B,P,C,H,W] (one point per forward+backward)."""
    return torch.stack([compute_ig(model, paths[i], int(y[i])) for i in range(len(paths))])


def prob_grad(model, x, y):
    xr = x.detach().clone().requires_grad_(True)
    return torch.autograd.grad(torch.softmax(model(xr), -1).gather(1, y.view(-1, 1)).sum(), xr)[0]


# --- registration and options ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", LATENT)
def test_registered_and_needs_a_vae(name):
    assert name in attribution.available_methods()
    assert METHODS.get(name).needs_vae is True
    with pytest.raises(ConfigError, match="without a VAE.*vae="):
        attribution.build_method(name)


@pytest.mark.parametrize("name", LATENT)
def test_method_config_matches_signature_defaults(name, vae):
    cfg = yaml.safe_load((CONFIGS / "method" / f"{name}.yaml").read_text())
    assert cfg.pop("name") == name
    params = option_parameters(METHODS.get(name))
    for key, value in cfg.items():
        assert key in params, key
        assert params[key].default == value, (key, params[key].default, value)
    m = attribution.build_method(name, vae=vae, **cfg)
    assert m.n_steps == 200


def test_paper_defaults(vae):
    m = build("ma_gig", vae)
    assert (m.n_steps, m.fraction, m.use_slerp, m.anchor_endpoints) == (200, 0.05, True, True)
    e = build("eig", vae)
    assert (e.use_slerp, e.anchor_endpoints) == (False, False)
    g = build("mig", vae)
    assert (g.alpha, g.max_iterations, g.epsilon, g.update) == (5e-5, 2, 1000.0, "gauss_seidel")


@pytest.mark.parametrize("name,bad", [
    ("ma_gig", dict(fraction=0)), ("ma_gig", dict(fraction=1.5)), ("ma_gig", dict(use_slerp="yes")),
    ("ma_gig", dict(anchor_endpoints=1)), ("eig", dict(use_slerp=None)), ("mig", dict(update="newton")),
    ("mig", dict(max_iterations=-1)), ("mig", dict(alpha=float("nan"))), ("eig", dict(vae_batch=0)),
    ("eig", dict(n_steps=1)),
])
def test_rejects_bad_values(name, bad, vae):
    with pytest.raises(ConfigError):
        build(name, vae, **bad)


# --- slerp and the latent step --------------------------------------------------------------------------------
def test_slerp_against_its_formula():
    g = torch.Generator().manual_seed(0)
    v0, v1 = torch.randn(4, 30, generator=g, dtype=torch.float64), torch.randn(4, 30, generator=g, dtype=torch.float64)
    t = torch.tensor([0.0, 0.3, 0.75, 1.0], dtype=torch.float64)
    out = slerp(t, v0, v1)
    for i in range(4):
        cos = torch.dot(v0[i] / v0[i].norm(), v1[i] / v1[i].norm())
        th = torch.acos(cos)
        ref = torch.sin((1 - t[i]) * th) / torch.sin(th) * v0[i] + torch.sin(t[i] * th) / torch.sin(th) * v1[i]
        assert torch.allclose(out[i], ref, atol=1e-12)
    assert torch.allclose(out[0], v0[0]) and torch.allclose(out[3], v1[3])
    # several t per row -> [B, K, D]
    many = slerp(t.view(1, -1).expand(4, -1), v0, v1)
    assert many.shape == (4, 4, 30) and torch.allclose(many[:, 1], slerp(0.3, v0, v1))
    # the authors' float32 single-vector version agrees
    assert torch.allclose(authors_slerp(torch.tensor(0.3), v0[1].float(), v1[1].float()).double(),
                          out[1], atol=1e-5)


def test_slerp_falls_back_to_lerp():
    v0 = torch.randn(3, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    v1 = torch.stack([2 * v0[0], torch.zeros(10, dtype=torch.float64), v0[2] + 1e-4])  # parallel, zero, |cos|~1
    t = torch.tensor([0.4, 0.4, 0.4], dtype=torch.float64)
    c0, c1 = slerp_coefficients(t, v0, v1)
    assert torch.allclose(c0, 1 - t) and torch.allclose(c1, t)
    assert torch.allclose(slerp(t, v0, v1), 0.6 * v0 + 0.4 * v1)


@pytest.mark.parametrize("d", [17, 256, 4096])
@pytest.mark.parametrize("q", [0.05, 0.1, 0.6, 0.9])
def test_lower_quantile_index_is_torch_quantile(d, q):
    v = torch.rand(d, generator=torch.Generator().manual_seed(d))
    assert v.sort().values[lower_quantile_index(q, d)] == torch.quantile(v, q, interpolation="lower")


def latent_guided_step(z, z_end, grad, target, fraction, use_slerp):
    """MA-GIG's latent step: the one Guided-IG step with a slerp or the authors' lerp, gamma unclamped, float32."""
    return guided_step(z, z_end, grad, target, fraction, partial_move=slerp_move if use_slerp else native_lerp_move,
                       clamp_gamma=False, diff_dtype=None)


def test_latent_guided_step_moves_smallest_gradients_to_the_l1_target():
    g = torch.Generator().manual_seed(5)
    z, z_end, grad = (torch.randn(3, 200, generator=g) for _ in range(3))
    l1 = (z - z_end).abs().double().sum(1)
    target = l1 * torch.tensor([0.5, 0.3, 1.1], dtype=torch.float64)  # the last one is behind: negative gamma
    new = latent_guided_step(z, z_end, grad, target, fraction=0.1, use_slerp=False)
    assert torch.allclose((new - z_end).abs().double().sum(1), target, rtol=1e-5)
    for i in range(2):
        arrived = (new[i] - z_end[i]).abs() < 1e-9
        untouched = new[i] == z[i]
        assert arrived.any() and untouched.any()
        assert grad[i].abs()[arrived].max() <= grad[i].abs()[untouched].min()  # smallest |g| first
    # negative gamma (target beyond the current distance): the selection moves away, as upstream
    assert ((new[2] - z_end[2]).abs() >= (z[2] - z_end[2]).abs() - 1e-6).all()
    # slerp: the same selection, a different partial move
    sl = latent_guided_step(z, z_end, grad, target, fraction=0.1, use_slerp=True)
    assert torch.equal((sl - z_end).abs() < 1e-9, (new - z_end).abs() < 1e-9)


# --- MA-GIG ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("anchor", [True, False])
def test_ma_gig_endpoints(anchor, vae, data, smooth_model):
    x, y, b = data
    out = build("ma_gig", vae, n_steps=8, anchor_endpoints=anchor, return_path=True).attribute(smooth_model, x, y)
    path = out.extras["path"]
    assert path.shape == (3, 8, 3, 16, 16) and out.attr.shape == x.shape and out.attr.dtype == torch.float32
    if anchor:
        assert torch.equal(path[:, 0], b) and torch.equal(path[:, -1], x)
    else:
        assert torch.allclose(path[:, 0], vae.decode(vae.encode(b)), atol=1e-5)
        assert torch.allclose(path[:, -1], vae.decode(vae.encode(x)), atol=1e-5)
    ends = torch.softmax(smooth_model(torch.stack([path[:, 0], path[:, -1]], 1).flatten(0, 1)), -1)
    ends = ends.gather(1, y.repeat_interleave(2).view(-1, 1)).view(3, 2)
    assert torch.allclose(out.f_start, ends[:, 0], atol=1e-6) and torch.allclose(out.f_end, ends[:, 1], atol=1e-6)


@pytest.mark.parametrize("kw", [dict(), dict(use_slerp=False), dict(anchor_endpoints=False), dict(fraction=0.3)])
def test_ma_gig_matches_the_authors_loop(kw, vae, data, smooth_model):
    x, y, b = data
    n = 10
    out = build("ma_gig", vae, n_steps=n, return_path=True, **kw).attribute(smooth_model, x, y)
    opts = dict(fraction=0.05, use_slerp=True, anchor_endpoints=True) | kw
    ref_path = torch.stack([ma_gig_path(smooth_model, vae, x[i], b[i], int(y[i]), n_steps=n, **opts) for i in range(3)])
    ref = authors_ig(smooth_model, ref_path, y)
    assert (out.extras["path"] - ref_path).abs().max() < 1e-4
    assert rel_err(out.attr, ref) < 1e-4


def test_ma_gig_reuses_the_decoded_points_gradients(vae, data, smooth_model):
    """attr = sum_k grad f(p_k) (p_{k+1} - p_k) with gradients recomputed at the returned path points, and the
    completeness gap is exactly that Riemann sum's error against f(x) - f(b)."""
    x, y, b = data
    out = build("ma_gig", vae, n_steps=12, return_path=True).attribute(smooth_model, x, y)
    path = out.extras["path"]
    grads = torch.stack([prob_grad(smooth_model, path[:, k], y) for k in range(path.shape[1] - 1)], 1)
    riemann = (grads * (path[:, 1:] - path[:, :-1])).sum(1)
    assert rel_err(out.attr, riemann) < 1e-5
    f = lambda t: torch.softmax(smooth_model(t), -1).gather(1, y.view(-1, 1)).squeeze(1)  # noqa: E731
    assert torch.allclose(out.f_end - out.f_start, f(x) - f(b), atol=1e-6)


@pytest.mark.parametrize("name,kw", [("ma_gig", dict()), ("ma_gig", dict(use_slerp=False)), ("eig", dict()),
                                     ("eig", dict(anchor_endpoints=True)), ("mig", dict(epsilon=0.0, alpha=1e-4))])
def test_completeness_exact_for_a_linear_model(name, kw, vae, data):
    """For logits linear in x every left Riemann sum is exact: sum attr = f(end) - f(start), where the ends are the
    raw b and x when anchored (MA-GIG) and the reconstructions otherwise (EIG, MIG)."""
    x, y, b = data
    model = LinearNet(shape=(3, 16, 16), classes=4).eval()
    out = build(name, vae, n_steps=8, objective="logit", **kw).attribute(model, x, y)
    assert (out.completeness < 1e-4).all(), out.completeness
    anchored = kw.get("anchor_endpoints", name == "ma_gig")
    lo, hi = (b, x) if anchored else (vae.decode(vae.encode(b)), vae.decode(vae.encode(x)))
    logit = lambda t: model(t).gather(1, y.view(-1, 1)).squeeze(1)  # noqa: E731
    assert torch.allclose(out.attr.flatten(1).sum(1), logit(hi) - logit(lo), rtol=1e-4, atol=1e-4)


# --- EIG and MIG against the authors ----------------------------------------------------------------------------
@pytest.mark.parametrize("use_slerp", [False, True])
def test_eig_matches_the_authors_loop(use_slerp, vae, data, smooth_model):
    x, y, b = data
    out = build("eig", vae, n_steps=9, use_slerp=use_slerp, max_batch=4, return_path=True).attribute(smooth_model, x, y)
    ref_path = torch.stack([eig_path(vae, x[i], b[i], n_steps=9, use_slerp=use_slerp) for i in range(3)])
    assert (out.extras["path"] - ref_path).abs().max() < 1e-4
    assert rel_err(out.attr, authors_ig(smooth_model, ref_path, y)) < 1e-4


def test_mig_gauss_seidel_matches_the_authors_loop(vae, data, smooth_model):
    x, y, b = data
    kw = dict(n_steps=6, alpha=1e-3, epsilon=0.0)
    out = build("mig", vae, return_path=True, **kw).attribute(smooth_model, x, y)
    ref_path = torch.stack([mig_path(vae, x[i], b[i], n_steps=6, alpha=1e-3, max_iterations=2, epsilon=0.0)[0]
                            for i in range(3)])
    line = torch.stack([eig_path(vae, x[i], b[i], n_steps=6) for i in range(3)])
    assert (ref_path - line).abs().max() > 0.1  # the relaxation really moved the path
    assert (out.extras["path"] - ref_path).abs().max() < 1e-2 * (ref_path - line).abs().max()
    assert rel_err(out.attr, authors_ig(smooth_model, ref_path, y)) < 1e-3
    assert out.extras["mig_sweeps"].tolist() == [2, 2, 2]


def test_mig_stops_on_low_energy_and_jacobi_differs(vae, data, smooth_model):
    x, y, b = data
    still = build("mig", vae, n_steps=6, epsilon=1e30, return_path=True).attribute(smooth_model, x, y)
    eig = build("eig", vae, n_steps=6, return_path=True).attribute(smooth_model, x, y)
    assert still.extras["mig_sweeps"].tolist() == [0, 0, 0]
    assert torch.allclose(still.extras["path"], eig.extras["path"], atol=1e-5)
    gs = build("mig", vae, n_steps=6, alpha=1e-3, epsilon=0.0, return_path=True).attribute(smooth_model, x, y)
    jac = build("mig", vae, n_steps=6, alpha=1e-3, epsilon=0.0, update="jacobi", return_path=True)
    jac = jac.attribute(smooth_model, x, y)
    assert jac.extras["mig_sweeps"].tolist() == [2, 2, 2]
    assert not torch.allclose(jac.extras["path"], gs.extras["path"], atol=1e-3)
    assert torch.equal(jac.extras["path"][:, [0, -1]], gs.extras["path"][:, [0, -1]])


# --- batching, chunking, pass counts --------------------------------------------------------------------------
@pytest.mark.parametrize("name,kw", [("ma_gig", dict()), ("ma_gig", dict(anchor_endpoints=False, use_slerp=False)),
                                     ("eig", dict(use_slerp=True)), ("mig", dict(alpha=1e-3, epsilon=0.0)),
                                     ("mig", dict(alpha=1e-3, epsilon=0.0, update="jacobi"))])
def test_batch_and_chunk_invariance(name, kw, vae, data, smooth_model):
    x, y, _ = data
    whole = build(name, vae, n_steps=7, **kw)(smooth_model, x, y)
    tiny_chunks = build(name, vae, n_steps=7, max_batch=1, vae_batch=1, **kw)
    single = torch.cat([tiny_chunks(smooth_model, x[i:i + 1], y[i:i + 1]) for i in range(3)])
    assert rel_err(single, whole) < 1e-4


COST_CASES = [("ma_gig", dict()), ("ma_gig", dict(anchor_endpoints=False)), ("ma_gig", dict(n_steps=3)),
              ("eig", dict()), ("eig", dict(anchor_endpoints=True)),
              ("mig", dict(epsilon=0.0)), ("mig", dict(epsilon=0.0, update="jacobi")),
              ("mig", dict(epsilon=0.0, max_iterations=1, n_steps=4))]


@pytest.mark.parametrize("name,kw", COST_CASES)
def test_pass_counts_equal_the_documented_cost(name, kw, vae, data, smooth_model):
    x, y, _ = data
    kw = dict(n_steps=9, max_batch=5, vae_batch=4) | kw
    m = build(name, vae, **kw)
    with PassCounter(smooth_model) as pc, VAEPassCounter(vae) as vc:
        m(smooth_model, x, y)
    got = {"fb": pc.fb, "f": pc.f, **vc.as_dict()}
    assert got == {k: 3 * v for k, v in m.cost(16, 16).items()}


def test_documented_cost_at_the_paper_settings(vae):
    """Per image at N = 200 (upstream: 399 fb, 397 decoder forwards, 199 decoder backwards for MA-GIG)."""
    assert build("ma_gig", vae).cost() == {"fb": 200, "f": 1, "decoder_f": 199, "decoder_b": 198, "encoder": 2}
    assert build("eig", vae).cost() == {"fb": 199, "f": 1, "decoder_f": 200, "decoder_b": 0, "encoder": 2}
    assert build("mig", vae).cost() == {"fb": 199, "f": 1, "decoder_f": 1386, "decoder_b": 790, "encoder": 2}
    assert build("mig", vae, update="jacobi").cost()["decoder_f"] == 992


def test_mig_best_case_cost(vae, data, smooth_model):
    x, y, _ = data
    with VAEPassCounter(vae) as vc:
        build("mig", vae, n_steps=6, epsilon=1e30)(smooth_model, x, y)
    assert vc.as_dict() == {"encoder": 6, "decoder_f": 3 * (6 + 4), "decoder_b": 3 * 4}


# --- other VAEs, channels, sizes ------------------------------------------------------------------------------
def test_ma_gig_on_a_tiny_autoencoder(data):
    torch.manual_seed(0)
    ae = AutoencoderTiny(encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
                         num_encoder_blocks=(1, 1), num_decoder_blocks=(1, 1), latent_channels=4)
    x, y, b = data
    model = LinearNet(shape=(3, 16, 16), classes=4).eval()
    out = build("ma_gig", ae, n_steps=6, objective="logit", return_path=True).attribute(model, x, y)
    assert torch.equal(out.extras["path"][:, 0], b) and (out.completeness < 1e-4).all()


@pytest.mark.parametrize("vae_channels", [3, 1])
def test_one_channel_classifier(vae_channels):
    model = SmoothNet(channels=1).eval()
    pix = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    x, y = (pix - 0.1307) / 0.3081, torch.tensor([1, 3])
    vae = VAEAdapter(tiny_kl(vae_channels))
    for name in LATENT:
        m = attribution.build_method(name, vae=vae, n_steps=5, mean=(0.1307,), std=(0.3081,), return_path=True,
                                     **({"epsilon": 0.0} if name == "mig" else {}))
        out = m.attribute(model, x, y)
        assert out.attr.shape == x.shape and out.extras["path"].shape == (2, 5, 1, 16, 16)
        assert torch.isfinite(out.attr).all()


@pytest.mark.parametrize("name", LATENT)
def test_image_size_not_a_multiple_of_the_vae_factor(name, vae):
    model = LinearNet(shape=(3, 15, 15)).eval()  # would fail on a 14x14 decode: the check must come first
    x = torch.zeros(1, 3, 15, 15)
    with pytest.raises(ConfigError, match="multiple"):
        build(name, vae, n_steps=4)(model, x, torch.tensor([0]))


def test_ma_gig_with_a_timm_classifier(vae, data, tiny_timm):
    """A real timm network (few channels, eval mode): agreement with the authors' loop and the documented passes."""
    x, y, b = data
    m = build("ma_gig", vae, n_steps=6, vae_batch=2)
    with PassCounter(tiny_timm) as pc, VAEPassCounter(vae) as vc:
        out = m.attribute(tiny_timm, x, y)
    assert {"fb": pc.fb, "f": pc.f, **vc.as_dict()} == {k: 3 * v for k, v in m.cost().items()}
    ref = torch.stack([authors_ma_gig(tiny_timm, vae, x[i], b[i], int(y[i]), n_steps=6) for i in range(3)])
    assert rel_err(out.attr, ref) < 1e-4


# --- speed (GPU only) -----------------------------------------------------------------------------------------
SD_VAE = dict(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
              block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, norm_num_groups=32)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_ma_gig_is_5x_faster_than_the_authors_loop_on_gpu():
    """SD-architecture VAE (random weights: the cost does not depend on them) and a ResNet-18 at 256x256, N = 20:
    seconds per image of the batched method (8 images) vs the authors' per-image loop (paths + compute_ig)."""
    import time

    import timm

    dev = torch.device("cuda")
    torch.manual_seed(0)
    vae = VAEAdapter(AutoencoderKL(**SD_VAE), mean=MEAN, std=STD).to(dev)
    model = timm.create_model("resnet18", pretrained=False, num_classes=1000).eval().to(dev).requires_grad_(False)
    x = ((torch.rand(8, 3, 256, 256, device=dev) - M.to(dev)) / S.to(dev))
    y = torch.arange(8, device=dev)
    b = (torch.zeros_like(x) - M.to(dev)) / S.to(dev)
    m = build("ma_gig", vae, n_steps=20)
    m(model, x[:2], y[:2])  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    m(model, x, y)
    torch.cuda.synchronize()
    ours = (time.perf_counter() - t0) / len(x)
    authors_ma_gig(model, vae, x[0], b[0], 0, n_steps=20)  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(2):
        authors_ma_gig(model, vae, x[i], b[i], i, n_steps=20)
    torch.cuda.synchronize()
    theirs = (time.perf_counter() - t0) / 2
    assert theirs / ours >= 5.0, f"{theirs:.3f} s vs {ours:.3f} s per image ({theirs / ours:.2f}x)"
