"""Gradient x Input against its closed form; random attributions: seeded, deterministic, model-free."""
from pathlib import Path

import pytest
import torch
from helpers.models import MEAN, STD, LinearNet

import attribution
from attribution import ConfigError, PassCounter
from attribution.registry import option_parameters


def _inputs(n=3, seed=2):
    g = torch.Generator().manual_seed(seed)
    pix = torch.rand(n, 3, 8, 8, generator=g)
    return (pix - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1), torch.tensor([0, 3, 1])


def test_grad_input_closed_form_linear_logit():
    model = LinearNet().eval()
    x, y = _inputs()
    m = attribution.build_method("grad_input", objective="logit", mean=MEAN, std=STD)
    out = m.attribute(model, x, y)
    b = (torch.zeros_like(x) - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    want = model.lin.weight[y].view_as(x) * (x - b)
    assert out.attr.dtype == torch.float32 and torch.allclose(out.attr, want, atol=1e-6)
    # for a linear logit, Gradient x Input against b is complete: sum attr = f(x) - f(b)
    fx, fb = model(x).gather(1, y[:, None])[:, 0], model(b).gather(1, y[:, None])[:, 0]
    assert torch.allclose(out.attr.flatten(1).sum(1), fx - fb, rtol=1e-4, atol=1e-4)
    assert out.f_start is None and out.f_end is None and out.completeness is None
    assert torch.allclose(out.extras["f_x"], fx.detach(), atol=1e-5)
    # "mean" baseline = zeros in the normalised space: plain gradient x input
    plain = attribution.build_method("grad_input", objective="logit", baseline="mean")(model, x, y)
    assert torch.allclose(plain, model.lin.weight[y].view_as(x) * x, atol=1e-6)


def test_grad_input_prob_and_passes(smooth_model, images):
    x, y = images
    m = attribution.build_method("grad_input", mean=MEAN, std=STD, max_batch=2)
    with PassCounter(smooth_model) as pc:
        attr = m(smooth_model, x, y)
    assert pc.fb == m.cost()["fb"] * len(x) == len(x) and pc.f == 0
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(torch.softmax(smooth_model(xr), -1).gather(1, y[:, None]).sum(), xr)
    b = (torch.zeros_like(x) - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    assert torch.allclose(attr, g * (x - b), atol=1e-7)
    assert not m.is_path


def test_random_is_seeded_deterministic_and_model_free(smooth_model, images):
    x, y = images
    m = attribution.build_method("random")
    with PassCounter(smooth_model) as pc:
        a1 = m(smooth_model, x, y)
    a2 = attribution.build_method("random", seed=0)(smooth_model, x, y)
    a3 = attribution.build_method("random", seed=1)(smooth_model, x, y)
    assert pc.fb == 0 and pc.f == 0 and m.cost() == {"fb": 0, "f": 0}
    assert a1.shape == x.shape and a1.dtype == torch.float32
    assert torch.equal(a1, a2) and torch.equal(a1, m(smooth_model, x, y))  # deterministic per call
    assert not torch.equal(a1, a3)
    assert torch.equal(m(smooth_model, x[1:2], y[1:2])[0], a1[1])  # per image: the same map alone as in the batch
    assert not torch.equal(a1[0], m(smooth_model, x[1:2], y[1:2])[0])  # another image, other noise
    assert abs(a1.mean().item()) < 0.1 and abs(a1.std().item() - 1) < 0.1  # standard normal
    assert m.attribute(smooth_model, x, y).completeness is None and not m.is_path
    with pytest.raises(ConfigError, match="seed"):
        attribution.build_method("random", seed=-1)


def test_random_scores_worse_than_grad_input_on_a_linear_model():
    """The control: on a linear logit, deleting (zeroing) the k top-ranked elements of Grad x Input removes the
    largest possible part of the logit; the same deletion ranked by random scores removes less."""
    model = LinearNet().eval()
    x, y = _inputs()
    gi = attribution.build_method("grad_input", objective="logit", baseline="mean")(model, x, y)
    rnd = attribution.build_method("random")(model, x, y)

    def drop(attr):
        k = attr[0].numel() // 10
        idx = attr.flatten(1).argsort(1, descending=True)[:, :k]
        xd = x.flatten(1).clone().scatter_(1, idx, 0).view_as(x)
        return (model(x) - model(xd)).gather(1, y[:, None])[:, 0]

    assert (drop(gi) > drop(rnd)).all()


@pytest.mark.parametrize("name", ["grad_input", "random"])
def test_configs_match_defaults(name):

    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[2] / f"configs/method/{name}.yaml"))
    assert cfg.pop("name") == name
    params = option_parameters(type(attribution.build_method(name)))
    assert set(cfg) <= set(params) and all(params[k].default == v for k, v in cfg.items())
    attribution.build_method(name, **cfg)
