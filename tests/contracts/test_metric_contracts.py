"""Contracts every registered metric keeps, parametrised over ``available_metrics()``: its registered columns are
what it returns, per image, and a bad option fails before any work naming the key."""
import pytest
import torch
from helpers.models import MEAN, STD, SmoothNet, normalized_images, tiny_vit

import attribution
from attribution import UnknownNameError, UnknownOptionError

#: small settings that keep each contract fast (the Quantus set is slow per call: one representative runs here,
#: the adapter's own tests cover the others)
FAST = {"insertion_deletion": {"step": 64}, "pic": {"num_data_points": 200}, "top_k_intersection": {"k": 32},
        "smooth_mprt": {"nr_samples": 2}, "max_sensitivity": {"nr_samples": 2}, "local_lipschitz": {"nr_samples": 2}}
METRICS = [m for m in attribution.available_metrics() if not m.startswith("quantus")] + ["quantus_pixel_flipping"]


@pytest.mark.parametrize("name", attribution.available_metrics())
def test_columns_are_declared_with_a_direction(name):
    info = attribution.metric_info(name)
    assert info.name == name
    if name != "quantus":  # any Quantus class by name: its key depends on metric_name
        assert info.columns, name
    assert all(c.direction in ("max", "min") and c.label for c in info.columns)


@pytest.mark.parametrize("model", ["cnn", "vit"])
@pytest.mark.parametrize("name", METRICS)
def test_returns_its_registered_columns_per_image(name, model):
    x, y = normalized_images(3, 16, seed=2), torch.tensor([0, 1, 2])
    metric = attribution.build_metric(name, mean=MEAN, std=STD, **FAST.get(name, {}))
    gt = {"mask": torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0)) < 0.3} \
        if metric.needs_ground_truth else {}  # localisation metrics score against a ground-truth mask
    if metric.needs_method:  # sanity and robustness metrics re-run the method
        gt["method"] = attribution.build_method("grad_input")
    out = metric(SmoothNet().eval() if model == "cnn" else tiny_vit(), x, torch.randn_like(x), y, **gt)
    for col in attribution.metric_info(name).columns:
        assert col.key in out, (name, col.key, sorted(out))
        assert out[col.key].shape == (3,), (name, col.key)


@pytest.mark.parametrize("name", [m for m in attribution.available_metrics() if m != "quantus"
                                  and not m.startswith("quantus_")])
def test_an_unknown_option_raises_a_config_error_naming_it(name):
    with pytest.raises(UnknownOptionError, match=r"\['no_such_option'\]"):
        attribution.build_metric(name, no_such_option=1)
    with pytest.raises(UnknownNameError, match="Choose one of"):
        attribution.build_metric(name + "_typo")
