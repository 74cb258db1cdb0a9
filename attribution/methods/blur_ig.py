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
from ..errors import check_bool, check_real
from .base import Attribution, FixedPathMethod, register_method


@register_method("blur_ig", display="BIG", order=2, aliases=("blurig",))
class BlurIG(FixedPathMethod):
    """Blur IG. Args (besides ``n_steps``, ``objective``, ``max_batch``, ``mean``/``std``, ``autocast``):

    max_sigma: the largest blur sigma in raw pixels, > 0 (benchmark 35; the ROAR runs use 6).
    sqrt: sigma_i = sqrt(i * max_sigma / N) instead of i * max_sigma / N (largest sigma sqrt(max_sigma)).
    """

    name = "blur_ig"
    #: the path starts at the most blurred image, not at a baseline (so neither does Expected Gradients apply)
    excluded_options = {k: "Blur IG has no baseline input: its path starts at the most blurred image of x"
                        for k in ("baseline", "n_samples", "seed")}

    def __init__(self, n_steps: int = 200, max_sigma: float = 35.0, sqrt: bool = False, **kwargs):
        super().__init__(n_steps=n_steps, **kwargs)
        self.max_sigma = check_real("max_sigma", max_sigma, 0, low_open=True)
        self.sqrt = check_bool("sqrt", sqrt)

    def sigmas(self) -> list[float]:
        """sigma_0 = 0 .. sigma_N (the most blurred), as the authors' ``BlurPathGenerator``."""
        n = self.n_steps
        vals = [i * self.max_sigma / n for i in range(n + 1)]
        return [math.sqrt(v) for v in vals] if self.sqrt else vals

    def sigma_at(self, alpha: float) -> float:
        """The blur at path position alpha in [0, 1] (0: the most blurred image, 1: x), for the other rules."""
        v = (1.0 - alpha) * self.max_sigma
        return math.sqrt(max(v, 0.0)) if self.sqrt else max(v, 0.0)

    def evaluations(self) -> int:
        return self.n_steps  # N + 1 points, N segments

    def path_points(self, x):
        sig, n = self.sigmas(), self.n_steps
        pixels = self.norm.denormalize(x)

        def blurred(images, pix, sub):
            pts = self.norm.normalize(blur_many(pix, sub))
            for r, s in enumerate(sub):
                if s <= 0:
                    pts[:, r] = images  # the path ends at x exactly (no denormalise/normalise round trip)
            return pts

        def points(start: int, stop: int) -> torch.Tensor:  # p_j = blur(x, sigma_{N-j}), j in [start, stop)
            return blurred(x, pixels, [sig[n - j] for j in range(start, stop)])

        def points_at(alphas: torch.Tensor) -> torch.Tensor:  # per image when the rows differ (adaptive spacing)
            rows = alphas.expand(x.shape[0], -1).tolist()
            if all(r == rows[0] for r in rows):
                return blurred(x, pixels, [self.sigma_at(a) for a in rows[0]])
            return torch.cat([blurred(x[i:i + 1], pixels[i:i + 1], [self.sigma_at(a) for a in r])
                              for i, r in enumerate(rows)])

        return points, points_at

    def _attribute(self, model, x, target):
        points, points_at = self.path_points(x)
        attr, f_start, f_end = self.integrate(model, x, target, points, points_at, self.n_steps + 1)
        return Attribution(attr, f_start, f_end)

    def path_cost(self, height=256, width=256):
        """Per image: N forward+backward (every point but x; upstream N + 1) and one forward at x (f_end)."""
        return {"fb": self.n_steps, "f": 1}

    def __repr__(self):
        return (f"{type(self).__name__}(name={self.name!r}, n_steps={self.n_steps}, max_sigma={self.max_sigma}, "
                f"sqrt={self.sqrt})")
