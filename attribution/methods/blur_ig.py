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

import torch

from ..engine.blur import blur_many
from ..engine.integrate import integrate_path
from ..errors import check_bool, check_real
from .base import Attribution, PathMethod, register_method


@register_method("blur_ig", display="BIG", order=2, aliases=("blurig",))
class BlurIG(PathMethod):
    """Blur IG. Args (besides ``n_steps``, ``objective``, ``max_batch``, ``mean``/``std``, ``autocast``):

    max_sigma: the largest blur sigma in raw pixels, > 0 (benchmark 35; the ROAR runs use 6).
    sqrt: sigma_i = sqrt(i * max_sigma / N) instead of i * max_sigma / N (largest sigma sqrt(max_sigma)).
    """

    name = "blur_ig"
    excluded_options = ("baseline",)  # the path starts at the most blurred image, not at a baseline

    def __init__(self, n_steps: int = 200, max_sigma: float = 35.0, sqrt: bool = False, **kwargs):
        super().__init__(n_steps=n_steps, **kwargs)
        self.max_sigma = check_real("max_sigma", max_sigma, 0, low_open=True)
        self.sqrt = check_bool("sqrt", sqrt)

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
