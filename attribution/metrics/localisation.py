"""Localisation: does the map point at the object? Scores of an attribution against the image's ground-truth mask.

Each metric takes ``mask=`` [B,1,H,W] (or [B,H,W]) bool, True on the object (a segmentation or the union of the
object's boxes), and returns one value per image. The map scored is ``a`` = the attribution reduced over channels
(``reduce_channels``: "sum" as Quantus's convention, or "abs_sum"), then ``|a|`` where ``abs`` (the default here:
signed path attributions point at the object with both signs). With N = H*W pixels, G = the mask, |G| its size:

- ``pointing_game``: 1[some pixel of maximal a lies in G] (``weighted``: a hit scores 1 - |G|/N).
  Zhang et al., IJCV 2018; Quantus PointingGame.
- ``energy_pointing_game``: sum_G a+ / (sum a+ + 1e-9), a+ = max(a, 0) of the signed map (``abs`` off by default:
  the energy is the evidence for the class). Wang et al., CVPR Workshops 2020 (Score-CAM); Quantus
  AttributionLocalisation(positive_attributions=True).
- ``relevance_mass_accuracy``: sum_G a / sum a. Arras et al., Information Fusion 2022; Quantus RelevanceMassAccuracy.
- ``relevance_rank_accuracy``: |top-|G| pixels of a, within G| / |G|. Arras et al. 2022; Quantus RelevanceRankAccuracy.
- ``top_k_intersection``: |top-k pixels of a, within G| / k (``concept_influence``: times N/|G|). Theiner et al.,
  WACV 2022; Quantus TopKIntersection.

Each equals the Quantus class given the same map and mask (``normalise=False``: Quantus's default division by
max|a| changes none of these scores but for the 1e-9 of the energy ratio; ``abs`` as here). An empty mask gives NaN,
as in Quantus. Rankings are stable descending sorts (ties: lower flat index first; Quantus's unstable argsort
leaves their order open). Cost: no classifier pass; one sort of H*W values per image for the rank metrics.
Higher is better for all five; a uniformly random map scores about |G|/N on each (the pointing game exactly in
expectation).
"""
from __future__ import annotations

import torch

from ..errors import ConfigError, check_bool, check_choice, check_int
from .base import Metric, register_metric

REDUCE = ("sum", "abs_sum")


def _check_mask(name: str, mask, attr: torch.Tensor) -> torch.Tensor:
    """``mask`` as [B, H*W] bool on the map's device, or a ConfigError saying what is wrong."""
    if mask is None:
        raise ConfigError(f"metric {name!r} needs the ground-truth object mask (mask= [B,1,H,W] bool): use a dataset "
                          f"with masks (dataset=mnist_canvas, or dataset.ground_truth=<trimaps or boxes folder>)")
    m = torch.as_tensor(mask, device=attr.device)
    if m.dim() == 4 and m.shape[1] == 1:
        m = m[:, 0]
    if m.dim() != 3 or m.shape[0] != attr.shape[0] or m.shape[-2:] != attr.shape[-2:]:
        raise ConfigError(f"metric {name!r}: mask {tuple(m.shape)} does not match attr {tuple(attr.shape)}: give "
                          f"[B,1,H,W] with the map's B, H and W")
    return m.reshape(m.shape[0], -1).bool()


class LocalisationMetric(Metric):
    """Shared options: ``reduce_channels`` ("sum" | "abs_sum"), ``abs`` (score |a|), ``mean``/``std``/
    ``max_batch`` (accepted for uniformity: these metrics run no classifier pass)."""

    needs_ground_truth = True

    def __init__(self, reduce_channels: str = "sum", abs: bool = True, mean=None, std=None,  # noqa: A002
                 max_batch: int | None = None):
        super().__init__(mean, std, max_batch)
        self.reduce_channels = check_choice("reduce_channels", reduce_channels, REDUCE)
        self.take_abs = check_bool("abs", abs)

    def __call__(self, model, x, attr, target, mask=None) -> dict[str, torch.Tensor]:
        if attr.shape[0] != x.shape[0] or attr.shape[-2:] != x.shape[-2:]:
            raise ConfigError(f"attr {tuple(attr.shape)} does not match x {tuple(x.shape)}")
        m = _check_mask(self.name, mask, attr)
        a = attr.float().to(x.device)
        a = a.abs().sum(1) if self.reduce_channels == "abs_sum" else a.sum(1)
        a = a.reshape(a.shape[0], -1)
        if self.take_abs:
            a = a.abs()
        score = self.score(a, m)
        score = torch.where(m.any(1), score, torch.full_like(score, float("nan")))  # empty mask: NaN, as Quantus
        return {self.name: score}

    def score(self, a: torch.Tensor, m: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Per-image scores of maps ``a`` [B,N] against masks ``m`` [B,N] bool."""
        raise NotImplementedError


def _ranked_hits(a: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """[B,N] bool: whether the pixel at each rank (0 = largest a, stable) lies in the mask."""
    order = torch.argsort(a, dim=1, descending=True, stable=True)
    return m.gather(1, order)


@register_metric("pointing_game", columns=(("pointing_game", "PG", "max"),))
class PointingGame(LocalisationMetric):
    """Pointing game (Zhang et al., "Top-Down Neural Attention by Excitation Backprop", IJCV 2018): a hit when a
    pixel of maximal a lies in G (any of them on ties, as Quantus); ``weighted``: a hit scores 1 - |G|/N."""

    name = "pointing_game"

    def __init__(self, weighted: bool = False, reduce_channels: str = "sum", abs: bool = True,  # noqa: A002
                 mean=None, std=None, max_batch: int | None = None):
        super().__init__(reduce_channels, abs, mean, std, max_batch)
        self.weighted = check_bool("weighted", weighted)

    def score(self, a, m):
        hit = ((a == a.max(1, keepdim=True).values) & m).any(1).float()
        if self.weighted:
            hit = hit * (1 - m.float().sum(1) / m.shape[1])
        return hit


@register_metric("energy_pointing_game", columns=(("energy_pointing_game", "EBPG", "max"),))
class EnergyPointingGame(LocalisationMetric):
    """Energy-based pointing game (Wang et al., "Score-CAM", CVPR Workshops 2020): the share of the map's positive
    energy inside G, sum_G a+ / (sum a+ + 1e-9), a+ = max(a, 0) (Quantus AttributionLocalisation with
    ``positive_attributions=True, abs=False``). ``abs`` defaults to False here: |a| would count evidence against
    the class as energy."""

    name = "energy_pointing_game"

    def __init__(self, reduce_channels: str = "sum", abs: bool = False, mean=None, std=None,  # noqa: A002
                 max_batch: int | None = None):
        super().__init__(reduce_channels, abs, mean, std, max_batch)

    def score(self, a, m):
        pos = a.clamp(min=0)
        return (pos * m).sum(1) / (pos.sum(1) + 1e-9)


@register_metric("relevance_mass_accuracy", columns=(("relevance_mass_accuracy", "RMA", "max"),))
class RelevanceMassAccuracy(LocalisationMetric):
    """Relevance mass accuracy (Arras et al., "CLEVR-XAI", Information Fusion 2022): sum_G a / sum a, the share of
    the map's mass inside G (Quantus RelevanceMassAccuracy)."""

    name = "relevance_mass_accuracy"

    def score(self, a, m):
        return (a * m).sum(1) / a.sum(1)


@register_metric("relevance_rank_accuracy", columns=(("relevance_rank_accuracy", "RRA", "max"),))
class RelevanceRankAccuracy(LocalisationMetric):
    """Relevance rank accuracy (Arras et al., 2022): of the |G| highest-ranked pixels, the fraction inside G
    (Quantus RelevanceRankAccuracy)."""

    name = "relevance_rank_accuracy"

    def score(self, a, m):
        size = m.sum(1, keepdim=True)
        top = torch.arange(m.shape[1], device=m.device).unsqueeze(0) < size
        return (_ranked_hits(a, m) & top).sum(1).float() / size.squeeze(1).clamp(min=1)


@register_metric("top_k_intersection", columns=(("top_k_intersection", "TopK", "max"),))
class TopKIntersection(LocalisationMetric):
    """Top-k intersection (Theiner et al., "Interpretable Semantic Photo Geolocation", WACV 2022): the fraction of
    the k highest-ranked pixels inside G; ``concept_influence`` scales it by N/|G| (Quantus TopKIntersection;
    k = 1000 as its default, fewer than the H*W pixels)."""

    name = "top_k_intersection"

    def __init__(self, k: int = 1000, concept_influence: bool = False, reduce_channels: str = "sum",
                 abs: bool = True, mean=None, std=None, max_batch: int | None = None):  # noqa: A002
        super().__init__(reduce_channels, abs, mean, std, max_batch)
        self.k = check_int("k", k, 1)
        self.concept_influence = check_bool("concept_influence", concept_influence)

    def score(self, a, m):
        if self.k >= m.shape[1]:
            raise ConfigError(f"invalid k={self.k}: fewer than the map's {m.shape[1]} pixels "
                              f"(metrics.{self.name}.k=...)")
        tki = _ranked_hits(a, m)[:, : self.k].float().mean(1)
        if self.concept_influence:
            tki = tki * m.shape[1] / m.sum(1).clamp(min=1)
        return tki


__all__ = ["check_masks_available", "LocalisationMetric", "PointingGame", "EnergyPointingGame", "RelevanceMassAccuracy",
           "RelevanceRankAccuracy", "TopKIntersection"]


def check_masks_available(dataset, metric_specs: dict) -> None:
    """Before any work: a metric that needs ground truth, configured on a dataset whose samples carry no mask, is a
    ConfigError naming the metric's key and the dataset key that gives masks. ``metric_specs``: {column: {"metric":
    registered name, ...}} (the runner's metrics config)."""
    from . import METRICS

    if getattr(dataset, "has_masks", False):
        return
    for col, spec in metric_specs.items():
        if getattr(METRICS.get(spec["metric"]), "needs_ground_truth", False):
            raise ConfigError(f"metrics.{col} needs ground-truth object masks but dataset "
                              f"{getattr(dataset, 'name', '?')!r} has none: use dataset=mnist_canvas, or give "
                              f"+dataset.ground_truth=<folder> (oxford_pet: the trimaps; imagenet: the ILSVRC box "
                              f"XML files), or drop it with metrics.{col}.enabled=false")
