"""The classifier's input normalisation and pixel-space baselines.

Baselines are defined on [0,1] pixels and mapped through the normalisation, as the papers do:
"black" = normalise(0), whose channel values are -mean/std (docs/upstream_methods.md section 1.1).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import ConfigError
from .blur import gaussian_blur

BASELINES = ("black", "mean", "blur")


class Normalizer:
    """x_norm = (x_pixel - mean) / std per channel; identity when mean/std are omitted."""

    def __init__(self, mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
        if (mean is None) != (std is None):
            raise ConfigError("give both mean and std, or neither (identity normalisation)")
        self.mean = None if mean is None else tuple(float(m) for m in mean)
        self.std = None if std is None else tuple(float(s) for s in std)
        if self.std is not None and any(s <= 0 for s in self.std):
            raise ConfigError(f"invalid std={self.std!r}: every entry must be > 0")

    def _stats(self, x: torch.Tensor):
        c = x.shape[-3]
        if self.mean is None:
            return None, None
        if len(self.mean) != c:
            raise ConfigError(f"mean/std have {len(self.mean)} channels but the input has {c}")
        shape = (1,) * (x.dim() - 3) + (c, 1, 1)
        m = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(shape)
        s = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(shape)
        return m, s

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        m, s = self._stats(pixels)
        return pixels if m is None else (pixels - m) / s

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        m, s = self._stats(x)
        return x if m is None else x * s + m

    def pixel_bounds(self, x: torch.Tensor):
        """Per-channel [lo, hi] of the normalised space that correspond to pixels in [0, 1]."""
        return self.normalize(torch.zeros_like(x)), self.normalize(torch.ones_like(x))


def resolve_baseline(x: torch.Tensor, baseline, norm: Normalizer) -> torch.Tensor:
    """Baseline in the classifier's input space, shaped like x.

    "black": normalise(zeros) (the papers' "zero" baseline); "mean": zeros in normalised space, i.e. the
    dataset-mean colour (SIG's 'mean'); "blur": Gaussian blur k=11, sigma=5 of the normalised input (SIG's
    'blur'); a tensor broadcastable to x is used as given (already in input space).
    """
    if isinstance(baseline, torch.Tensor):
        try:
            return baseline.to(device=x.device, dtype=x.dtype).expand_as(x).clone()
        except RuntimeError as e:
            raise ConfigError(f"baseline tensor of shape {tuple(baseline.shape)} does not broadcast to "
                              f"the input shape {tuple(x.shape)}") from e
    if baseline == "black" or baseline == "zero":
        return norm.normalize(torch.zeros_like(x))
    if baseline == "mean":
        return torch.zeros_like(x)
    if baseline == "blur":
        return gaussian_blur(x, 5.0, ksize=11)
    raise ConfigError(f"invalid baseline={baseline!r}: choose one of {list(BASELINES)} or pass a tensor")
