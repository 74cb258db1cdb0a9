"""Base class of every metric: ``metric(model, x, attr, target) -> dict of per-image tensors``."""
from __future__ import annotations

from typing import Dict, Optional

import torch

from ..engine.normalize import Normalizer
from ..errors import ConfigError
from ..registry import Registry

METRICS = Registry("metric")
register_metric = METRICS.register


class Metric:
    """Shared options: ``mean``/``std`` (the classifier's normalisation), ``max_batch`` (rows per forward)."""

    name = "?"
    #: True where a NaN value can only come from NaN/Inf model outputs (not from a rule that skips an image, as
    #: PIC's): the harness then flags the image's row
    nan_means_bad_output = False

    def __init__(self, mean=None, std=None, max_batch: Optional[int] = None):
        self.norm = Normalizer(mean, std)
        if max_batch is not None and (not isinstance(max_batch, int) or max_batch < 1):
            raise ConfigError(f"invalid max_batch={max_batch!r}: a positive integer or None")
        self.max_batch = max_batch

    def _remember_chunk(self, size: int) -> None:
        """The chunk size that fits after an out-of-memory: kept for the rest of the run (as the engine does)."""
        self.max_batch = size

    def __call__(self, model, x: torch.Tensor, attr: torch.Tensor, target: torch.Tensor) -> Dict[str, torch.Tensor]:
        if attr.shape[0] != x.shape[0] or attr.shape[-2:] != x.shape[-2:]:
            raise ConfigError(f"attr {tuple(attr.shape)} does not match x {tuple(x.shape)}")
        target = torch.as_tensor(target, device=x.device).long().view(-1)
        return self.compute(model, x.float(), attr.float().to(x.device), target)

    def compute(self, model, x, attr, target) -> Dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError
