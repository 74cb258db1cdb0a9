"""Base class of every metric: ``metric(model, x, attr, target) -> dict of per-image tensors``."""
from __future__ import annotations

import torch

from ..engine.chunking import Chunked, Chunker
from ..engine.normalize import Normalizer
from ..errors import ConfigError
from ..registry import Column, MetricInfo, Registry


def _metric_info(name: str, factory, *, columns=(), levels=None) -> MetricInfo:
    cols = tuple(c if isinstance(c, Column) else Column(*c) for c in columns)
    return MetricInfo(name=name, columns=cols, levels=None if levels is None else tuple(float(v) for v in levels),
                      factory=factory)


METRICS = Registry("metric", _metric_info)


def register_metric(name: str, *, columns=(), levels=None):
    """Register a metric under its config name, with its facts (:class:`attribution.registry.MetricInfo`):
    ``columns``, its scalar outputs as ``(key, table label, "max" | "min")`` (direction: which is better), and
    ``levels``, the x positions of its curves at default settings (None: evenly spaced on [0, 1])."""
    return METRICS.register(name, columns=columns, levels=levels)


class Metric(Chunked):
    """Shared options: ``mean``/``std`` (the classifier's normalisation), ``max_batch`` (rows per forward)."""

    name = "?"
    #: True where a NaN value can only come from NaN/Inf model outputs (not from a rule that skips an image, as
    #: PIC's): the harness then flags the image's row
    nan_means_bad_output = False
    #: True where the metric scores a map against the image's ground-truth object mask: the harness then calls
    #: ``metric(model, x, attr, target, mask=m)`` with ``m`` [B,1,H,W] bool (attribution.metrics.localisation)
    needs_ground_truth = False
    #: True where the metric re-runs the attribution method (on a randomised model, under input noise): the harness
    #: then calls ``metric(model, x, attr, target, method=m)`` (attribution.metrics.sanity, .robustness)
    needs_method = False

    def __init__(self, mean=None, std=None, max_batch: int | None = None):
        self.norm = Normalizer(mean, std)
        self.chunker = Chunker(max_batch, "max_batch")

    def __call__(self, model, x: torch.Tensor, attr: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        if attr.shape[0] != x.shape[0] or attr.shape[-2:] != x.shape[-2:]:
            raise ConfigError(f"attr {tuple(attr.shape)} does not match x {tuple(x.shape)}")
        target = torch.as_tensor(target, device=x.device).long().view(-1)
        return self.compute(model, x.float(), attr.float().to(x.device), target)

    def compute(self, model, x, attr, target) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError
