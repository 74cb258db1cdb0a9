"""Blur Integrated Gradients (Xu, Venugopalan, Sundararajan, Maji and Yan, "Attribution in Scale and Space",
CVPR 2020), as the SIG authors compute it (upstream ``big``, docs/upstream_methods.md section 2.2).

Sigma grid sigma_i = i * max_sigma / N, i = 0..N (with ``sqrt``: sqrt(i * max_sigma / N)). The path has N + 1
points p_j = blur(x, sigma_{N-j}): it starts at the most blurred image and ends at x itself (sigma = 0 is x,
exactly). There is no constant baseline: f_start = f(blur(x, max_sigma)). The attribution is the left Riemann sum

    attr = sum_{j=0}^{N-1} grad f(p_j) * (p_{j+1} - p_j)      (gradient at the more blurred end of each segment).

The blur acts on raw pixels: denormalise, Gaussian blur equal to torchvision's ``gaussian_blur`` (kernel size
k = int(6 sigma + 1) bumped to odd, minimum 3; reflect padding; replicate padding where the kernel's half width
reaches the image size, where torchvision would fail), renormalise.

Points are generated per chunk of steps, batched over images and steps (one grouped convolution per chunk,
kernels zero-padded to the chunk's widest; this equals blurring step by step).

Differs from PAIR saliency's ``BlurIG`` (not the benchmarked code): PAIR blurs with scipy ``gaussian_filter``
(zero padding, radius 4 sigma), takes the gradient at the *less* blurred end of each interval and multiplies it
with a finite-difference d blur / d sigma (``grad_step``). Both converge to the same path integral as N grows
when the blur is the same.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..engine.integrate import integrate_path
from ..engine.normalize import _gaussian_kernel1d
from ..errors import check
from .base import Attribution, AttributionMethod, register_method


def blur_kernel_size(sigma: float) -> int:
    """int(6 sigma + 1), bumped to odd, at least 3 (the authors' choice for torchvision's ``gaussian_blur``)."""
    k = max(3, int(6 * sigma + 1))
    return k + (k % 2 == 0)


def blur_many(pixels: torch.Tensor, sigmas: Sequence[float]) -> torch.Tensor:
    """Gaussian blurs of [B,C,H,W] pixels at several sigmas -> [B, S, C, H, W] (sigma 0 = a copy).

    Per sigma identical to :func:`attribution.engine.normalize.gaussian_blur` (torchvision's kernel and reflect
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
            kern[r, off:off + k] = _gaussian_kernel1d(sigmas[i], k, pixels.device, pixels.dtype)
        weight = kern.repeat_interleave(c, dim=0)  # row (step s, channel c)
        n_ch = len(idx) * c
        pad = k_max // 2
        y = pixels.unsqueeze(1).expand(b, len(idx), c, h, w).reshape(b, n_ch, h, w)
        y = F.conv2d(F.pad(y, (pad, pad, 0, 0), mode=mode), weight.view(n_ch, 1, 1, k_max), groups=n_ch)
        y = F.conv2d(F.pad(y, (0, 0, pad, pad), mode=mode), weight.view(n_ch, 1, k_max, 1), groups=n_ch)
        out[:, idx] = y.view(b, len(idx), c, h, w)
    return out


@register_method("blur_ig")
class BlurIG(AttributionMethod):
    """Blur IG. Args (besides ``n_steps``, ``objective``, ``max_batch``, ``mean``/``std``, ``autocast``):

    max_sigma: the largest blur sigma in raw pixels, > 0 (benchmark 35; the ROAR runs use 6).
    sqrt: sigma_i = sqrt(i * max_sigma / N) instead of i * max_sigma / N (largest sigma sqrt(max_sigma)).
    """

    name = "blur_ig"

    def __init__(self, n_steps: int = 200, max_sigma: float = 35.0, sqrt: bool = False, objective: str = "prob",
                 max_batch=None, mean=None, std=None, autocast=False):
        super().__init__(n_steps=n_steps, objective=objective, max_batch=max_batch, mean=mean, std=std,
                         autocast=autocast)
        ok = (isinstance(max_sigma, (int, float)) and not isinstance(max_sigma, bool) and math.isfinite(max_sigma)
              and max_sigma > 0)
        check(ok, "max_sigma", max_sigma, "a finite number > 0")
        check(isinstance(sqrt, bool), "sqrt", sqrt, "true or false")
        self.max_sigma = float(max_sigma)
        self.sqrt = sqrt

    def sigmas(self) -> list[float]:
        """sigma_0 = 0 .. sigma_N (the most blurred), as the authors' ``BlurPathGenerator``."""
        n = self.n_steps
        vals = [i * self.max_sigma / n for i in range(n + 1)]
        return [math.sqrt(v) for v in vals] if self.sqrt else vals

    def _attribute(self, model, x, target):
        sig, n = self.sigmas(), self.n_steps
        pixels = self.norm.denormalize(x)

        def points(start: int, stop: int) -> torch.Tensor:  # p_j = blur(x, sigma_{N-j}), j in [start, stop)
            sub = [sig[n - j] for j in range(start, stop)]
            pts = self.norm.normalize(blur_many(pixels, sub))
            for r, s in enumerate(sub):
                if s <= 0:
                    pts[:, r] = x  # the path ends at x exactly (no denormalise/normalise round trip)
            return pts

        attr, f_start, f_end = integrate_path(model, points, n + 1, target, self.evaluator, x.shape[0],
                                              row_shape=x.shape[1:])
        return Attribution(attr, f_start, f_end)

    def cost(self, height=256, width=256):
        """Per image: N forward+backward (every point but x; upstream N + 1) and one forward at x (f_end)."""
        return {"fb": self.n_steps, "f": 1}

    def __repr__(self):
        return (f"{type(self).__name__}(name={self.name!r}, n_steps={self.n_steps}, max_sigma={self.max_sigma}, "
                f"sqrt={self.sqrt})")
