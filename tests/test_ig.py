import pytest
import torch
from helpers.models import MEAN, STD

import attribution
from attribution import PassCounter


def test_ig_completeness_smooth_model(smooth_model, images):
    x, y = images
    m = attribution.build_method("ig", n_steps=200, mean=MEAN, std=STD)
    out = m.attribute(smooth_model, x, y)
    assert out.attr.shape == x.shape and out.attr.dtype == torch.float32
    assert (out.completeness < 1e-3).all(), out.completeness
    coarse = attribution.build_method("ig", n_steps=5, mean=MEAN, std=STD).attribute(smooth_model, x, y)
    assert (coarse.completeness > 5 * out.completeness).all()  # the Riemann error shrinks with the steps


def test_ig_matches_captum_left_riemann(smooth_model, images):
    from captum.attr import IntegratedGradients

    x, y = images
    n = 50
    ours = attribution.build_method("ig", n_steps=n, mean=MEAN, std=STD)(smooth_model, x, y)
    b = (torch.zeros_like(x) - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    prob = lambda inp: torch.softmax(smooth_model(inp), -1)  # noqa: E731
    # captum's riemann_left over n-1 intervals uses alphas k/(n-1), k=0..n-2: the same sum as ours
    ref = IntegratedGradients(prob).attribute(x, baselines=b, target=y, n_steps=n - 1, method="riemann_left")
    assert torch.allclose(ours, ref.float(), rtol=1e-5, atol=1e-7 * ref.abs().max())


def test_ig_pass_count(smooth_model, images):
    x, y = images
    m = attribution.build_method("ig", n_steps=20, max_batch=7)
    with PassCounter(smooth_model) as pc:
        m(smooth_model, x, y)
    assert pc.fb == 19 * len(x) and pc.f == len(x)
    assert m.cost() == {"fb": 19, "f": 1}


@pytest.mark.parametrize("bad", [dict(n_steps=0), dict(n_steps=1), dict(baseline="grey"), dict(objective="x")])
def test_ig_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        attribution.build_method("ig", **bad)


def test_unknown_method_names_choices():
    with pytest.raises(KeyError, match="Choose one of"):
        attribution.build_method("igg")
    with pytest.raises(TypeError, match="allowed"):
        attribution.build_method("ig", n_stepz=3)


def test_default_chunk_holds_about_half_a_megapixel_on_the_cpu():
    from attribution.engine.chunking import default_max_batch

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    sizes = {28: 32, 64: 32, 128: 32, 160: 16, 224: 8, 256: 8, 512: 2, 2048: 1}
    assert {s: default_max_batch(cpu, (3, s, s)) for s in sizes} == sizes
    assert default_max_batch(cpu) == 32 and default_max_batch(cuda, (3, 256, 256)) == 128


def test_ig_chunks_large_images_by_the_default_on_the_cpu():
    """IG's path chunks follow the size-aware default: 8 rows at 224 px, so 2 images x 4 steps per chunk."""
    rows = []
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3, padding=1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    net.register_forward_pre_hook(lambda m, a: rows.append(a[0].shape[0]))
    x = torch.rand(2, 3, 224, 224)
    attribution.build_method("ig", n_steps=9)(net.eval(), x, torch.tensor([0, 1]))
    assert rows[:-1] == [8, 8] and rows[-1] == 2  # 8 gradient points x 2 images in chunks of 8, then f at x
