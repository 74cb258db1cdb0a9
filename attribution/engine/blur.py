"""The library's blur kernels, one home for all: Blur IG's path, the "blur" baseline, SAMP's and RISE's canvases.

- :func:`gaussian_blur` / :func:`blur_many`: torchvision's separable Gaussian (kernel size int(6 sigma + 1), odd,
  at least 3), reflect padding (replicate where the kernel is wider than the image); ``blur_many`` runs several
  sigmas as one grouped convolution.
- :func:`delta_gaussian_kernel`: ``scipy.ndimage.gaussian_filter`` of a centred delta (RISE's ``gkern`` and SAMP's
  ``_gkern``), applied by :func:`delta_gaussian_blur` as a per-channel convolution with zero padding.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F


def blur_kernel_size(sigma: float) -> int:
    """int(6 sigma + 1), bumped to odd, at least 3 (the authors' choice for torchvision's ``gaussian_blur``)."""
    k = max(3, int(6 * sigma + 1))
    return k + (k % 2 == 0)


def gaussian_kernel1d(sigma: float, ksize: int, device=None, dtype=None) -> torch.Tensor:
    """torchvision's 1-D Gaussian kernel: exp(-t^2 / (2 sigma^2)) at t = -(k-1)/2 .. (k-1)/2, normalised to sum 1."""
    half = (ksize - 1) * 0.5
    t = torch.linspace(-half, half, ksize, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, sigma: float | torch.Tensor, ksize: int | None = None,
                  padding_mode: str = "reflect") -> torch.Tensor:
    """Separable Gaussian blur of [N,C,H,W], same kernel as torchvision's ``gaussian_blur``.

    ``ksize`` defaults to int(6*sigma+1) bumped to odd (minimum 3), as the Blur IG authors use.
    Reflect padding falls back to replicate padding where the kernel is wider than the image.
    """
    sigma = float(sigma)
    if sigma <= 0:
        return x.clone()
    if ksize is None:
        ksize = blur_kernel_size(sigma)
    n, c, h, w = x.shape
    k = gaussian_kernel1d(sigma, ksize, x.device, x.dtype)
    pad = ksize // 2
    mode = "replicate" if padding_mode == "reflect" and (pad >= h or pad >= w) else padding_mode
    mode = "constant" if mode == "zeros" else mode
    y = x.reshape(n * c, 1, h, w)
    y = F.conv2d(F.pad(y, (pad, pad, 0, 0), mode=mode), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, pad, pad), mode=mode), k.view(1, 1, -1, 1))
    return y.reshape(n, c, h, w)


def blur_many(pixels: torch.Tensor, sigmas: Sequence[float]) -> torch.Tensor:
    """Gaussian blurs of [B,C,H,W] pixels at several sigmas -> [B, S, C, H, W] (sigma 0 = a copy).

    Per sigma identical to :func:`gaussian_blur` (torchvision's kernel and reflect
    padding, replicate where reflect is impossible), but all sigmas of one padding mode run as one grouped,
    separable convolution with kernels zero-padded to the widest.
    """
    b, c, h, w = pixels.shape
    sigmas = [float(s) for s in sigmas]
    out = pixels.new_empty(b, len(sigmas), c, h, w)
    groups = {"copy": [], "reflect": [], "replicate": []}
    for i, s in enumerate(sigmas):
        if s <= 0:
            groups["copy"].append(i)
        else:
            pad = blur_kernel_size(s) // 2
            groups["reflect" if (pad < h and pad < w) else "replicate"].append(i)
    if groups["copy"]:
        out[:, groups["copy"]] = pixels.unsqueeze(1)
    for mode in ("reflect", "replicate"):
        idx: list[int] = groups[mode]
        if not idx:
            continue
        sizes = [blur_kernel_size(sigmas[i]) for i in idx]
        k_max = max(sizes)
        kern = pixels.new_zeros(len(idx), k_max)
        for r, (i, k) in enumerate(zip(idx, sizes)):
            off = (k_max - k) // 2
            kern[r, off:off + k] = gaussian_kernel1d(sigmas[i], k, pixels.device, pixels.dtype)
        weight = kern.repeat_interleave(c, dim=0)  # row (step s, channel c)
        n_ch = len(idx) * c
        pad = k_max // 2
        y = pixels.unsqueeze(1).expand(b, len(idx), c, h, w).reshape(b, n_ch, h, w)
        y = F.conv2d(F.pad(y, (pad, pad, 0, 0), mode=mode), weight.view(n_ch, 1, 1, k_max), groups=n_ch)
        y = F.conv2d(F.pad(y, (0, 0, pad, pad), mode=mode), weight.view(n_ch, 1, k_max, 1), groups=n_ch)
        out[:, idx] = y.view(b, len(idx), c, h, w)
    return out


@lru_cache(maxsize=8)
def delta_gaussian_kernel(klen: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """``scipy.ndimage.gaussian_filter`` (reflect mode, truncate 4) of a klen x klen centred delta, float32."""
    import numpy as np
    from scipy.ndimage import gaussian_filter

    inp = np.zeros((klen, klen))
    inp[klen // 2, klen // 2] = 1
    return torch.from_numpy(gaussian_filter(inp, sigma).astype("float32"))


def delta_gaussian_blur(x: torch.Tensor, klen: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """Per-channel conv2d of [N,C,H,W] with :func:`delta_gaussian_kernel`, zero padding klen // 2."""
    c = x.shape[1]
    k = delta_gaussian_kernel(klen, sigma).to(device=x.device, dtype=x.dtype)
    return F.conv2d(x, k.expand(c, 1, klen, klen), padding=klen // 2, groups=c)
