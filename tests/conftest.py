"""Shared fixtures: tiny real models (timm with few channels, analytic models), no network."""
import os

import pytest
import torch
import torch.nn as nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# one thread per xdist worker: `make test` runs -n 2 on 2 cores, and oversubscribed threads are far slower
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, os.cpu_count() or 1)))
# denormal floats in backward passes of tiny random models make CPU kernels ~10x slower; flushing them is harmless
torch.set_flush_denormal(True)

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class SmoothNet(nn.Module):
    """A smooth analytic classifier: conv -> tanh -> pooled linear head (float64-friendly)."""

    def __init__(self, channels=3, classes=5, seed=0, width=8, scale=0.05):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(channels, width, 3, padding=1)
        self.head = nn.Linear(width * 4, classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * scale)

    def forward(self, x):
        h = torch.tanh(self.conv(x))
        h = nn.functional.adaptive_avg_pool2d(h, 2).flatten(1)
        return self.head(h)


def TanhNet(classes=5, scale=0.3, seed=0):
    """The sequential methods' test model: SmoothNet with 6 features and larger weights (more curvature)."""
    return SmoothNet(classes=classes, seed=seed, width=6, scale=scale)


def normalized_images(n=3, size=8, seed=1):
    """n random [0,1] images mapped through the ImageNet normalisation."""
    g = torch.Generator().manual_seed(seed)
    pix = torch.rand(n, 3, size, size, generator=g)
    return (pix - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


class LinearNet(nn.Module):
    """logits = W vec(x): every gradient is known in closed form."""

    def __init__(self, shape=(3, 8, 8), classes=4, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.lin = nn.Linear(int(torch.tensor(shape).prod()), classes, bias=False)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(self.lin.weight.shape, generator=g))

    def forward(self, x):
        return self.lin(x.flatten(1))


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
