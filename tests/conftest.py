"""Shared fixtures over the test models of :mod:`helpers.models` (tiny real and analytic models), no network."""
import os

import pytest
import torch
from helpers.models import MEAN, STD, SmoothNet

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# one thread per xdist worker: `make test` runs -n 2 on 2 cores, and oversubscribed threads are far slower
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, os.cpu_count() or 1)))
# denormal floats in backward passes of tiny random models make CPU kernels ~10x slower; flushing them is harmless
torch.set_flush_denormal(True)


@pytest.fixture(scope="module")
def embedded_cache(tmp_path_factory):
    """A private cache of the embedded assets for this test worker (never the user's), with the reduced training
    budget, for the module's tests."""
    root = tmp_path_factory.getbasetemp() / "attribution-cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ATTRIBUTION_CACHE", str(root))
        mp.setenv("ATTRIBUTION_EMBEDDED_BUDGET", "quick")
        yield root


@pytest.fixture
def smooth_model():
    return SmoothNet().eval()


@pytest.fixture
def tiny_timm():
    """A real timm ResNet with very few channels (random weights, eval mode)."""
    import timm

    torch.manual_seed(0)
    return timm.create_model("test_resnet", pretrained=False, num_classes=10).eval()


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(1)
    pix = torch.rand(3, 3, 16, 16, generator=g)
    x = (pix - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return x, torch.tensor([0, 1, 2])
