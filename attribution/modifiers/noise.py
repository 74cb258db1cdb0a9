"""Noise averaging over any attribution method: SmoothGrad, SmoothGrad-squared and VarGrad.

For a base method M, an image x and n noisy copies x + eps_s, eps_s ~ N(0, sigma_x^2 I), s = 1..n:

    smoothgrad     (Smilkov et al. 2017, "SmoothGrad: removing noise by adding noise"):
                   SG(x)  = 1/n sum_s M(x + eps_s)
    smoothgrad_sq  (Hooker et al. 2019, "A Benchmark for Interpretability Methods in Deep Neural Networks"):
                   SG2(x) = 1/n sum_s M(x + eps_s)^2
    vargrad        (Adebayo et al. 2018, "Local Explanation Methods for Deep Neural Networks Lack Sensitivity to
                   Parameter Values"): VG(x) = 1/n sum_s (M(x + eps_s) - SG(x))^2, the population variance
                   (divided by n), the quantity captum's ``NoiseTunnel(nt_type="vargrad")`` computes as
                   E[M^2] - E[M]^2; here it is computed in two passes (no cancellation, never negative).

The noise scale is per image, as PAIR saliency's SmoothGrad defines ``stdev_spread``:
sigma_x = sigma * (max(x) - min(x)) over that image's (normalised) input tensor. The draws eps_s / sigma_x come
from :func:`attribution.engine.seeding.randn_per_image`, seeded by ``seed`` and the image's values, so a batch
equals each image alone. The base runs once on all B*n noisy copies (images repeated, targets repeated), batched
and chunked by its own evaluator, then the maps are reduced over the copies.

Completeness: for kind "smoothgrad" over a path method, ``Attribution.f_start``/``f_end`` are the means over the
copies of the base's f_start/f_end; by linearity sum(SG) - (mean f_end - mean f_start) is the mean of the copies'
completeness gaps, so completeness is defined as for one path over the mean. The squared and variance maps are
not path attributions (f_start/f_end None, ``is_path`` False).
``extras``: ``noise_stdev`` [B] (sigma_x), and each of the base's extras with B*n leading rows as [B, n, ...].
Cost: n times the base's classifier passes per image.
"""
from __future__ import annotations

import torch

from ..engine.seeding import randn_per_image
from ..errors import check, check_choice, check_int, check_real
from ..methods.base import Attribution, AttributionMethod
from .wrapper import MethodWrapper

KINDS = ("smoothgrad", "smoothgrad_sq", "vargrad")


class NoiseTunnel(MethodWrapper):
    """``kind`` ("smoothgrad" | "smoothgrad_sq" | "vargrad") over ``samples`` noisy copies of each image, noise
    stdev ``sigma`` x the image's value range, draws seeded by ``seed`` (see the module docstring)."""

    def __init__(self, method: AttributionMethod, kind: str = "smoothgrad", samples: int = 16, sigma: float = 0.15,
                 seed: int = 0):
        super().__init__(method, "noise")
        self.kind = check_choice("noise.kind", kind, KINDS)
        self.samples = check_int("noise.samples", samples, 1)
        check(kind != "vargrad" or samples >= 2, "noise.samples", samples,
              "an integer >= 2 for vargrad (the variance of one copy is zero)")
        self.sigma = check_real("noise.sigma", sigma, 0.0)
        self.seed = check_int("noise.seed", seed, 0, allowed="a non-negative integer")
        self.name = f"{method.name}+{kind}"
        self.is_path = kind == "smoothgrad" and bool(method.is_path)

    def noisy_copies(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x + eps [B, n, C,H,W], sigma_x [B]) for x [B,C,H,W]."""
        b = x.shape[0]
        flat = x.reshape(b, -1)
        stdev = self.sigma * (flat.amax(1) - flat.amin(1))
        eps = randn_per_image(x, self.samples, self.seed) * stdev.view(b, 1, *([1] * (x.dim() - 1)))
        return x.unsqueeze(1) + eps, stdev

    def _attribute(self, model, x, target):
        b, n = x.shape[0], self.samples
        noisy, stdev = self.noisy_copies(x)
        out = self.method.attribute(model, noisy.reshape(b * n, *x.shape[1:]), target.repeat_interleave(n))
        maps = out.attr.float().view(b, n, *x.shape[1:])
        extras = {"noise_stdev": stdev}
        for key, val in out.extras.items():
            if isinstance(val, torch.Tensor) and val.dim() > 0 and val.shape[0] == b * n:
                extras[key] = val.reshape(b, n, *val.shape[1:])
        if self.kind == "smoothgrad":
            f_start = f_end = None
            if self.is_path and out.f_start is not None and out.f_end is not None:
                f_start, f_end = out.f_start.view(b, n).mean(1), out.f_end.view(b, n).mean(1)
            return Attribution(maps.mean(1), f_start, f_end, extras)
        if self.kind == "smoothgrad_sq":
            return Attribution(maps.square().mean(1), None, None, extras)
        return Attribution(maps.var(1, correction=0), None, None, extras)

    def cost(self, height: int = 256, width: int = 256) -> dict[str, float]:
        return {k: self.samples * v for k, v in self.method.cost(height, width).items()}

    def __repr__(self):
        return (f"NoiseTunnel({self.method!r}, kind={self.kind!r}, samples={self.samples}, sigma={self.sigma:g}, "
                f"seed={self.seed})")
