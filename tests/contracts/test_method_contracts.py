"""Contracts every registered method keeps, written once and parametrised over ``available_methods()``: a method is
tested the moment it is registered. Per-method files keep only the mathematics."""
from pathlib import Path

import pytest
import torch
import yaml
from helpers.models import MEAN, STD, SmoothNet, normalized_images, tiny_kl, tiny_vit

import attribution
from attribution import ConfigError, PassCounter, UnknownOptionError
from attribution.vae import VAEAdapter

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "method"
#: options a config cannot hold (objects the harness passes at run time)
RUNTIME_OPTIONS = {"mean", "std", "vae", "references"}
#: small settings that keep each contract fast; every other option is the method's YAML default
FAST = {"ig": {"n_steps": 6}, "blur_ig": {"n_steps": 6}, "guided_ig": {"n_steps": 6}, "sig": {"n_steps": 6},
        "ma_gig": {"n_steps": 5}, "eig": {"n_steps": 5}, "mig": {"n_steps": 5},
        "ig2": {"steps": 4, "rep_layer": "head"}, "agi": {"num_neg_cls": 2, "max_iter": 3},
        "samp": {"step_size": 16, "max_iter": 6}}
#: methods whose documented cost() is an upper bound (they stop early, data-dependent)
BOUNDED = {"agi", "samp", "mig"}
#: methods that draw per batch (IG2's reference indices), so an image alone gets other draws
DRAWS_PER_BATCH = {"ig2"}
METHODS = attribution.available_methods()


def yaml_config(name):
    cfg = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    assert cfg.pop("name") == name
    return cfg


@pytest.fixture(params=["cnn", "vit"])
def model(request):
    """Each contract on a small CNN and on a tiny timm ViT (patches, attention, LayerNorm)."""
    return SmoothNet().eval() if request.param == "cnn" else tiny_vit()


@pytest.fixture(scope="module")
def vae():
    return VAEAdapter(tiny_kl(), mean=MEAN, std=STD)


def build(name, vae, **extra):
    kw = {**yaml_config(name), **FAST.get(name, {}), "mean": MEAN, "std": STD, **extra}
    if attribution.method_info(name).needs_vae:
        kw["vae"] = vae
    method = attribution.build_method(name, **kw)
    if attribution.method_info(name).needs_bank:
        method.set_references(normalized_images(4, 16, seed=7))
    return method


def data(n=3):
    return normalized_images(n, 16, seed=1), torch.arange(n) % 5


@pytest.mark.parametrize("name", METHODS)
def test_yaml_equals_the_options(name):
    cfg = yaml_config(name)
    options = attribution.method_options(name)
    assert set(cfg) == set(options) - RUNTIME_OPTIONS, name
    assert {k: options[k] for k in cfg} == cfg


@pytest.mark.parametrize("name", METHODS)
def test_builds_from_its_yaml_and_returns_float32_maps_of_the_input(name, vae, model):
    x, y = data()
    out = build(name, vae).attribute(model, x, y)
    assert out.attr.shape == x.shape and out.attr.dtype == torch.float32 and out.attr.device == x.device
    assert torch.isfinite(out.attr).all()
    info = attribution.method_info(name)
    assert (out.completeness is not None) == info.is_path


@pytest.mark.parametrize("name", METHODS)
def test_cost_equals_the_counted_classifier_passes(name, vae, model):
    x, y = data(2)
    method = build(name, vae)
    with PassCounter(model) as pc:
        method(model, x, y)
    cost = method.cost(16, 16)
    counted = {"fb": pc.fb / len(x), "f": pc.f / len(x)}
    for key in ("fb", "f"):
        if name in BOUNDED:
            assert counted[key] <= cost[key], (key, counted, cost)
        else:
            assert counted[key] == cost[key], (key, counted, cost)


@pytest.mark.parametrize("name", METHODS)
def test_a_batch_equals_each_image_alone_and_chunks_change_nothing(name, vae, model):
    x, y = data()
    batch = build(name, vae)(model, x, y)
    # chunks of 2 rows, where the method calls the model (the random control never does: it takes no max_batch)
    chunked = batch if name == "random" else build(name, vae, max_batch=2)(model, x, y)
    scale = batch.abs().max().clamp_min(1e-12)
    assert (batch - chunked).abs().max() / scale < 1e-5, name
    if name in DRAWS_PER_BATCH:
        return
    alone = torch.cat([build(name, vae)(model, x[i:i + 1], y[i:i + 1]) for i in range(len(x))])
    assert (batch - alone).abs().max() / scale < 1e-5, name


@pytest.mark.parametrize("name", METHODS)
def test_an_unknown_option_raises_a_config_error_naming_it(name):
    with pytest.raises(UnknownOptionError, match=r"unknown option\(s\) \['no_such_option'\]; allowed: "):
        attribution.build_method(name, no_such_option=1)
    with pytest.raises(ConfigError, match="objective"):
        attribution.build_method(name, objective="entropy")
    with pytest.raises(ConfigError, match="autocast"):
        attribution.build_method(name, autocast="int8")


@pytest.mark.parametrize("name", METHODS)
def test_odd_shapes_give_finite_maps(name, vae, model):
    """A batch of one, non-square images, sizes that are not powers of two."""
    x = normalized_images(1, 12, seed=3)[..., :12, :8].contiguous()  # 12 x 8: a multiple of the tiny VAE's factor
    if name == "ig2":
        pytest.skip("IG2 needs a reference bank of the image's shape; its own tests cover it")
    attr = build(name, vae)(model, x, torch.tensor([1]))
    assert attr.shape == x.shape and torch.isfinite(attr).all()
