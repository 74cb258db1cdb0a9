"""Blur IG as the SIG authors run it (``BIGExplainer`` / ``BlurPathGenerator``; docs/upstream_methods.md 2.2)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .core import compute_ig, preprocess, undo_preprocess


def blur_sigmas(n_steps: int, max_sigma: float, sqrt: bool = False) -> list[float]:
    """sigma_i = i * max_sigma / N for i = 0..N; with ``sqrt`` the square root of that (the largest is then
    sqrt(max_sigma))."""
    s = [i * max_sigma / n_steps for i in range(n_steps + 1)]
    return [math.sqrt(v) for v in s] if sqrt else s


def authors_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """The authors' blur of one raw image [C,H,W]: torchvision ``gaussian_blur`` with k = int(6 sigma + 1) bumped to
    odd (minimum 3; k = 211 at sigma 35), a full 2-D kernel and reflect padding. Where reflect is impossible (kernel
    half-width >= image size, where torchvision raises and the authors' run would crash) the same 2-D convolution
    with replicate padding, so small test images still get a path."""
    if sigma <= 0:
        return img.clone()
    k = max(3, int(6 * sigma + 1))
    k += (k % 2 == 0)
    pad = k // 2
    if pad < img.shape[-1] and pad < img.shape[-2]:
        from torchvision.transforms.functional import gaussian_blur

        return gaussian_blur(img, [k, k], [sigma, sigma])
    t = torch.linspace(-(k - 1) / 2, (k - 1) / 2, k, device=img.device, dtype=img.dtype)
    k1 = torch.exp(-0.5 * (t / sigma) ** 2)
    k1 = k1 / k1.sum()
    k2 = (k1[:, None] * k1[None, :]).expand(img.shape[-3], 1, k, k)
    y = F.pad(img.unsqueeze(0), (pad, pad, pad, pad), mode="replicate")
    return F.conv2d(y, k2, groups=img.shape[-3])[0]


def blur_path(x: torch.Tensor, n_steps: int, max_sigma: float, sqrt: bool = False,
              mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> torch.Tensor:
    """N + 1 points path_j = blur(x, sigma_{N-j}) of one normalised image [C,H,W] -> [N+1,C,H,W].

    The path starts at the most blurred image and ends at x; there is no constant baseline. Each blur is done in
    raw [0,1] space (undo the normalisation, blur, normalise again), one point at a time; sigma = 0 returns
    ``x.clone()`` exactly, so the last point is x itself."""
    sig = blur_sigmas(n_steps, max_sigma, sqrt)
    pix = undo_preprocess(x, mean, std)
    pts = []
    for j in range(n_steps + 1):
        s = sig[n_steps - j]
        pts.append(x.clone() if s <= 0 else preprocess(authors_blur(pix, s), mean, std))
    return torch.stack(pts)


def authors_blur_ig(model, x: torch.Tensor, target, n_steps: int = 200, max_sigma: float = 35.0, sqrt: bool = False,
                    mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                    objective: str = "prob") -> torch.Tensor:
    """Blur IG of one image [C,H,W]: ``blur_path`` then ``compute_ig`` over its N intervals, N + 1
    forward+backward passes (the gradient at the more blurred end of each segment; the last one unused)."""
    return compute_ig(model, blur_path(x, n_steps, max_sigma, sqrt, mean, std), target, objective)
