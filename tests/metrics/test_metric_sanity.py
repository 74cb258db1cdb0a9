"""A model whose evidence is known: a good attribution must beat a random one on every metric."""
import pytest
import torch
from torch import nn

import attribution


class EvidenceNet(nn.Module):
    """logit_1 = 10 (mean of x over the evidence pixels S - 0.6), logit_0 = 0; x is 0.2 off S and 1.0 on S."""

    def __init__(self, support):
        super().__init__()
        self.register_buffer("w", support.float() / support.float().sum())

    def forward(self, x):
        s = (x * self.w).flatten(1).sum(1) / x.shape[1]
        return torch.stack([torch.zeros_like(s), 10 * (s - 0.6)], 1)


@pytest.fixture
def known():
    g = torch.Generator().manual_seed(0)
    n, h = 4, 16
    support = torch.rand(1, 1, h, h, generator=g) < 0.2
    x = torch.where(support, 1.0, 0.2).expand(n, 3, h, h).clone()
    x += 0.02 * torch.rand(x.shape, generator=g)
    model = EvidenceNet(support).eval()
    good = x * model.w  # gradient x input of the class-1 logit (up to a constant)
    rand = torch.randn(x.shape, generator=g)
    return model, x, good, rand, torch.ones(n, dtype=torch.long)


def _pair(name, known, **opts):
    model, x, good, rand, y = known
    metric = attribution.build_metric(name, **opts)
    return metric(model, x, good, y), metric(model, x, rand, y)


def test_diffid_prefers_the_good_attribution(known):
    g, r = _pair("diffid", known)
    assert (g["diffid"] > r["diffid"] + 0.3).all()
    assert (g["deletion"] < r["deletion"]).all() and (g["insertion"] >= r["insertion"]).all()


def test_rise_prefers_the_good_attribution(known):
    g, r = _pair("insertion_deletion", known)
    assert (g["rise_deletion"] < r["rise_deletion"]).all()
    assert (g["rise_insertion"] > r["rise_insertion"]).all()


def test_quantus_pixel_flipping_prefers_the_good_attribution(known):
    g, r = _pair("quantus_pixel_flipping", known)
    assert (g["quantus_pixel_flipping"] < r["quantus_pixel_flipping"]).all()  # MoRF deletion: lower is better
