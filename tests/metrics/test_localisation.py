"""Localisation metrics: equal to the Quantus classes on small inputs, hand-computed cases, and the mask checks."""
import warnings

import numpy as np
import pytest
import torch
from helpers.models import SmoothNet

import attribution
from attribution import ConfigError

NAMES = ["pointing_game", "energy_pointing_game", "relevance_mass_accuracy", "relevance_rank_accuracy",
         "top_k_intersection"]


def _score(name, attr, mask, **opts):
    """The metric on maps ``attr`` [B,C,H,W] and masks ``mask`` [B,1,H,W] (no classifier pass is made)."""
    x = torch.zeros(attr.shape[0], 3, *attr.shape[-2:])
    out = attribution.build_metric(name, **opts)(SmoothNet().eval(), x, attr, torch.zeros(len(x)), mask=mask)
    return out[name]


def _quantus_cases():
    import quantus

    return [("pointing_game", quantus.PointingGame, dict(abs=True), {}),
            ("pointing_game", quantus.PointingGame, dict(abs=False), dict(abs=False)),
            ("energy_pointing_game", quantus.AttributionLocalisation, dict(abs=False, positive_attributions=True),
             {}),
            ("relevance_mass_accuracy", quantus.RelevanceMassAccuracy, dict(abs=True), {}),
            ("relevance_mass_accuracy", quantus.RelevanceMassAccuracy, dict(abs=False), dict(abs=False)),
            ("relevance_rank_accuracy", quantus.RelevanceRankAccuracy, dict(abs=True), {}),
            ("top_k_intersection", quantus.TopKIntersection, dict(abs=True, k=10), dict(k=10)),
            ("top_k_intersection", quantus.TopKIntersection, dict(abs=True, k=7, concept_influence=True),
             dict(k=7, concept_influence=True))]


@pytest.mark.parametrize("case", range(8))
def test_equals_quantus_on_small_inputs(case):
    name, cls, qkw, ours = _quantus_cases()[case]
    rng = np.random.default_rng(case)
    b, h, w = 6, 8, 8
    x = rng.normal(size=(b, 3, h, w)).astype(np.float32)
    a = rng.normal(size=(b, 1, h, w)).astype(np.float32)  # continuous: no ties, so every ranking is defined
    s = np.zeros((b, 1, h, w), np.float32)
    for i in range(b):  # a different box per image
        r, c = rng.integers(0, 5, size=2)
        s[i, 0, r:r + 3 + i % 2, c:c + 2 + i % 3] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = cls(normalise=False, disable_warnings=True, **qkw)(
            model=SmoothNet().eval(), x_batch=x, y_batch=np.zeros(b, int), a_batch=a.copy(), s_batch=s,
            channel_first=True, device="cpu")
    got = _score(name, torch.from_numpy(a), torch.from_numpy(s).bool(), **ours)
    np.testing.assert_allclose(got.numpy(), np.asarray(want, dtype=np.float64), rtol=1e-5, atol=1e-6)


def test_hand_computed_cases():
    # a 2x3 map, one channel; the mask is the left column
    a = torch.tensor([[[[3.0, 1.0, 0.0], [2.0, -4.0, 0.5]]]])
    m = torch.tensor([[[[True, False, False], [True, False, False]]]])
    # |a| = [[3,1,0],[2,4,.5]]: the maximum 4 lies outside the mask; with the signed map the maximum 3 lies inside
    assert float(_score("pointing_game", a, m)) == 0.0
    assert float(_score("pointing_game", a, m, abs=False)) == 1.0
    # weighted: a hit scores 1 - |G|/N = 1 - 2/6
    assert float(_score("pointing_game", a, m, abs=False, weighted=True)) == pytest.approx(4 / 6)
    # energy: positive part [3,1,0,2,0,.5] -> (3 + 2) / 6.5
    assert float(_score("energy_pointing_game", a, m)) == pytest.approx(5 / 6.5)
    # mass: |a| sums to 10.5, 5 inside
    assert float(_score("relevance_mass_accuracy", a, m)) == pytest.approx(5 / 10.5)
    # rank: the top |G| = 2 of |a| are 4 (out) and 3 (in) -> 1/2
    assert float(_score("relevance_rank_accuracy", a, m)) == pytest.approx(0.5)
    # top-3 of |a|: 4 (out), 3 (in), 2 (in) -> 2/3; concept influence x N/|G| = 3
    assert float(_score("top_k_intersection", a, m, k=3)) == pytest.approx(2 / 3)
    assert float(_score("top_k_intersection", a, m, k=3, concept_influence=True)) == pytest.approx(2.0)


def test_channels_are_reduced_before_scoring():
    # two channels that cancel at (0,0): sum -> 0 there, abs_sum -> 2
    a = torch.zeros(1, 2, 2, 2)
    a[0, 0, 0, 0], a[0, 1, 0, 0], a[0, 0, 1, 1] = 1.0, -1.0, 0.5
    m = torch.zeros(1, 1, 2, 2, dtype=torch.bool)
    m[0, 0, 0, 0] = True
    assert float(_score("pointing_game", a, m)) == 0.0
    assert float(_score("pointing_game", a, m, reduce_channels="abs_sum")) == 1.0


def test_a_perfect_map_scores_one_and_an_empty_mask_is_nan():
    m = torch.zeros(2, 1, 6, 6, dtype=torch.bool)
    m[0, 0, 1:4, 2:5] = True  # image 1 has an empty mask
    a = m.float() + 0.01 * torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    a = a * m  # all the mass inside the mask
    for name in NAMES:
        out = _score(name, a, m, **({"k": 9} if name == "top_k_intersection" else {}))
        assert out.shape == (2,)
        assert float(out[0]) == pytest.approx(1.0), name
        assert torch.isnan(out[1]), name


def test_a_random_map_scores_about_the_mask_share():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(400, 1, 16, 16, generator=g)
    m = torch.zeros(400, 1, 16, 16, dtype=torch.bool)
    m[:, :, :8, :8] = True  # a quarter of the pixels
    for name in NAMES:
        got = float(_score(name, a, m, **({"k": 32} if name == "top_k_intersection" else {})).mean())
        assert abs(got - 0.25) < 0.05, (name, got)


def test_bad_masks_and_options_fail_naming_the_key():
    a = torch.rand(2, 1, 4, 4)
    with pytest.raises(ConfigError, match="needs the ground-truth object mask"):
        _score("pointing_game", a, None)
    with pytest.raises(ConfigError, match="does not match attr"):
        _score("pointing_game", a, torch.ones(2, 1, 5, 4, dtype=torch.bool))
    with pytest.raises(ConfigError, match="k=16"):
        _score("top_k_intersection", a, torch.ones(2, 1, 4, 4, dtype=torch.bool), k=16)
    with pytest.raises(ConfigError, match="reduce_channels"):
        attribution.build_metric("relevance_mass_accuracy", reduce_channels="max")
    for name in NAMES:
        assert attribution.build_metric(name).needs_ground_truth
    assert not attribution.build_metric("diffid").needs_ground_truth
