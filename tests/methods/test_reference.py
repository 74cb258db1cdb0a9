"""The one copy of the authors' algorithms (benchmarks.reference): its interface for the speed benchmark, the
authors' costs, and the algorithms themselves on analytic functions whose answer is known."""
import pytest
import torch
from diffusers import AutoencoderKL
from helpers.models import MEAN, STD, LinearNet, SmoothNet

import attribution
import benchmarks.reference as ref
from attribution.vae import VAEAdapter

M = torch.tensor(MEAN).view(3, 1, 1)
S = torch.tensor(STD).view(3, 1, 1)


def _image(seed=1, size=16):
    return (torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed)) - M) / S


def _vae():
    torch.manual_seed(0)
    kl = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                       up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                       latent_channels=4, norm_num_groups=8).eval()
    return VAEAdapter(kl, mean=MEAN, std=STD)


def test_the_speed_benchmark_interface():
    assert set(ref.LOOPS) == {"ig", "sig", "blur_ig", "guided_ig", "grad_input", "ma_gig", "eig", "mig", "agi", "ig2"}
    assert set(ref.REAL_LOOPS) <= set(ref.LOOPS) and set(ref.NO_LOOP) == {"samp", "random"}
    for name in ("LOOPS", "REAL_LOOPS", "NO_LOOP", "LoopRun", "compute_ig", "grad_at", "authors_blur",
                 "spectral_path_svd", "loop_ig", "loop_guided_ig"):
        assert name in ref.__all__, name
    assert all(hasattr(ref, name) for name in ref.__all__)


def test_authors_costs_are_the_documented_rows():
    """docs/upstream_methods.md sections 2.13 and 11 at N = 200."""
    rows = {name: cost(200) for name, cost in ref.UPSTREAM_COSTS.items()}
    assert rows == {"grad_input": {"fb": 1}, "ig": {"fb": 200}, "sig": {"fb": 200}, "blur_ig": {"fb": 201},
                    "guided_ig": {"fb": 399}, "eig": {"fb": 200, "decoder_f": 200, "encoder": 2},
                    "ma_gig": {"fb": 399, "decoder_f": 397, "decoder_b": 199, "encoder": 2}}


def test_every_anchored_path_is_exact_on_a_linear_model():
    """With logits linear in x every left Riemann sum telescopes per feature: IG, Guided IG, SIG and MA-GIG all give
    w * (x - b) (on a linear function Guided IG equals IG), and Gradient x Input gives it in one pass."""
    model = LinearNet(shape=(3, 16, 16)).eval()
    x, t = _image(), 2
    b = ref.black(x, MEAN, STD)
    exact = (model.lin.weight[t].view(3, 16, 16) * (x - b)).detach()
    kw = dict(objective="logit")
    got = {"ig": ref.authors_ig(model, x, b, t, 7, **kw), "grad_input": ref.authors_grad_input(model, x, b, t, **kw),
           "guided_ig": ref.authors_guided_ig(model, x, b, t, 9, 0.2, **kw),
           "sig": ref.authors_sig(model, x, b, t, 6, 0.4, **kw),
           "ma_gig": ref.authors_ma_gig(model, _vae(), x, b, t, 5, 0.3, **kw)}
    for name, attr in got.items():
        torch.testing.assert_close(attr, exact, rtol=1e-4, atol=1e-4 * float(exact.abs().max()), msg=name)


def test_guided_path_follows_the_authors_l1_schedule():
    """Points 0..N-2 sit at L1 distance L (1 - k/N) from x, the last point is x: the last segment spans 2/N."""
    model, x = SmoothNet().eval(), _image()
    b = ref.black(x, MEAN, STD)
    n = 8
    path = ref.guided_ig_path(model, x, b, 1, n, 0.1)
    total = (x - b).abs().sum()
    frac = [float((p - x).abs().sum() / total) for p in path]
    assert frac[:-1] == pytest.approx([1 - k / n for k in range(n - 1)], abs=1e-5) and frac[-1] == 0.0


def test_blur_path_ends_at_the_image_and_starts_most_blurred():
    x = _image()
    path = ref.blur_path(x, 4, 3.0, mean=MEAN, std=STD)
    assert path.shape == (5, 3, 16, 16) and torch.equal(path[-1], x)
    blurred = ref.preprocess(ref.authors_blur(ref.undo_preprocess(x, MEAN, STD), 3.0), MEAN, STD)
    assert torch.equal(path[0], blurred)


def test_parameters_require_grad_leaves_the_model_as_it_was():
    model = SmoothNet().eval().requires_grad_(False)
    x = _image(size=8)
    before = [p.clone() for p in model.parameters()]
    run = ref.authors_agi(model, x, 0, num_neg_cls=5, step_size=0.2, max_iter=3, mean=MEAN, std=STD)
    assert run.attr.shape == x.shape and len(run.iterations) == len(ref.agi_targets(5, 5))
    assert all(not p.requires_grad and p.grad is None for p in model.parameters())
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))


@pytest.mark.parametrize("name", ["ig", "sig", "blur_ig", "guided_ig", "grad_input"])
def test_real_loops_return_the_reference_attributions(name):
    model = SmoothNet().eval()
    x = torch.stack([_image(1), _image(2)])
    y = torch.tensor([0, 3])
    kw = {"grad_input": {}, "blur_ig": {"n_steps": 4, "max_sigma": 2.0}}.get(name, {"n_steps": 4})
    method = attribution.build_method(name, mean=MEAN, std=STD, **kw)
    run = ref.LOOPS[name](model, x, y, method)
    assert run.mode == "real" and run.sec_per_image > 0 and run.attr.shape == x.shape
    torch.testing.assert_close(run.attr, method(model, x, y), rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("name", ["guided_ig", "ma_gig", "eig", "mig", "ig2", "agi"])
def test_timed_loops_run_on_a_subset_and_extrapolate(name):
    model = SmoothNet().eval()
    x = torch.stack([_image(1), _image(2), _image(3)])
    y = torch.tensor([0, 3, 1])
    kw = {"ig2": {"steps": 5, "rep_layer": "head"}, "agi": {"max_iter": 2, "num_neg_cls": 5},
          "mig": {"n_steps": 5, "epsilon": 0.0}}.get(name, {"n_steps": 5})
    if name in ("ma_gig", "eig", "mig"):
        kw["vae"] = _vae()
    method = attribution.build_method(name, mean=MEAN, std=STD, **kw)
    run = ref.LOOPS[name](model, x, y, method, max_images=1, max_steps=2)
    assert run.mode == "extrapolated" and run.sec_per_image > 0 and run.images == 1 and run.attr is None
    assert "timed on 1/3 images" in run.note
