"""The classifier's input normalisation and pixel-space baselines.

Baselines are defined on [0,1] pixels and mapped through the normalisation, as the papers do:
"black" = normalise(0), whose channel values are -mean/std (docs/upstream_methods.md section 1.1).
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from ..errors import ConfigError

BASELINES = ("black", "mean", "blur")


class Normalizer:
    """x_norm = (x_pixel - mean) / std per channel; identity when mean/std are omitted."""

    def __init__(self, mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None):
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


def _gaussian_kernel1d(sigma: float, ksize: int, device, dtype) -> torch.Tensor:
    half = (ksize - 1) * 0.5
    t = torch.linspace(-half, half, ksize, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, sigma: Union[float, torch.Tensor], ksize: Optional[int] = None,
                  padding_mode: str = "reflect") -> torch.Tensor:
    """Separable Gaussian blur of [N,C,H,W], same kernel as torchvision's ``gaussian_blur``.

    ``ksize`` defaults to int(6*sigma+1) bumped to odd (minimum 3), as the Blur IG authors use.
    Reflect padding falls back to replicate padding where the kernel is wider than the image.
    """
    sigma = float(sigma)
    if sigma <= 0:
        return x.clone()
    if ksize is None:
        ksize = max(3, int(6 * sigma + 1))
        ksize += (ksize % 2 == 0)
    n, c, h, w = x.shape
    k = _gaussian_kernel1d(sigma, ksize, x.device, x.dtype)
    pad = ksize // 2
    mode = "replicate" if padding_mode == "reflect" and (pad >= h or pad >= w) else padding_mode
    mode = "constant" if mode == "zeros" else mode
    y = x.reshape(n * c, 1, h, w)
    y = F.conv2d(F.pad(y, (pad, pad, 0, 0), mode=mode), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, pad, pad), mode=mode), k.view(1, 1, -1, 1))
    return y.reshape(n, c, h, w)


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
