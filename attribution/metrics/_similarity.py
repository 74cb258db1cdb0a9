"""Batched similarity, complexity and normalisation functions of the re-run metrics (sanity, robustness), each the
per-image equal of its Quantus 0.6 function (``quantus.functions``), computed on the device in float64.

- :func:`spearman`: Quantus ``correlation_spearman`` (SciPy's ``spearmanr``: Pearson correlation of the average
  ranks, ties sharing their mean rank); NaN where a row is constant.
- :func:`ssim`: Quantus ``ssim`` on the flattened maps, i.e. scikit-image's ``structural_similarity`` of two 1-D
  signals: uniform window of 7, sample covariance (factor 7/6), K1 = 0.01, K2 = 0.03, data range = max - min of
  the two rows together, mean over the positions at least 3 from either end (scikit-image crops the window's
  half-width, so its reflect padding never enters the mean).
- :func:`discrete_entropy`: Quantus ``discrete_entropy``: Shannon entropy (nats) of ``np.histogram(a, n_bins)``,
  equal-width bins over [min, max] of the row (the last bin closed), as NumPy assigns them.
- :func:`normalise_by_max` / :func:`normalise_by_second_moment`: Quantus ``normalise_by_max`` /
  ``normalise_by_average_second_moment_estimate`` with ``normalise_axes`` = every axis but the batch one, i.e. per
  image (Quantus's default divides by the batch's maximum, which makes an image's score depend on its batch).
"""
from __future__ import annotations

import torch

from ..errors import check_choice

SIMILARITIES = ("spearman", "ssim")


def _rows(a: torch.Tensor) -> torch.Tensor:
    return a.reshape(a.shape[0], -1).double()


def average_ranks(a: torch.Tensor) -> torch.Tensor:
    """Ranks 1..F of each row of ``a`` [B, F], ties given their mean rank (SciPy's ``rankdata(method="average")``)."""
    s = torch.sort(a, dim=1).values
    below = torch.searchsorted(s, a.contiguous(), right=False)
    upto = torch.searchsorted(s, a.contiguous(), right=True)
    return (below + upto + 1).double() / 2


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation per row of a, b [B, F] (float64); NaN where a row is constant."""
    a, b = _rows(a), _rows(b)
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    den = (a.square().sum(1) * b.square().sum(1)).sqrt()
    return torch.where(den > 0, (a * b).sum(1) / den, torch.full_like(den, float("nan"))).clamp(-1, 1)


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation per image of a, b [B, ...] -> [B] float64."""
    return pearson(average_ranks(_rows(a)), average_ranks(_rows(b)))


def ssim(a: torch.Tensor, b: torch.Tensor, win: int = 7) -> torch.Tensor:
    """Quantus ``ssim`` per image of a, b [B, ...] (flattened to 1-D signals) -> [B] float64."""
    a, b = _rows(a), _rows(b)
    n = a.shape[1]
    if n < win:
        raise ValueError(f"ssim needs maps of at least {win} entries, got {n}")
    both = torch.cat([a, b], 1)
    rng = (both.max(1).values - both.min(1).values).abs().view(-1, 1)
    c1, c2 = (0.01 * rng) ** 2, (0.03 * rng) ** 2

    def mean(v):  # the window mean at every position whose window lies inside the signal
        return v.unfold(1, win, 1).mean(-1)

    ux, uy = mean(a), mean(b)
    cov = win / (win - 1)
    vx, vy, vxy = cov * (mean(a * a) - ux * ux), cov * (mean(b * b) - uy * uy), cov * (mean(a * b) - ux * uy)
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(1)


def similarity(name: str):
    """The similarity function named by a metric's ``similarity`` option."""
    check_choice("similarity", name, SIMILARITIES)
    return {"spearman": spearman, "ssim": ssim}[name]


def discrete_entropy(a: torch.Tensor, n_bins: int = 100) -> torch.Tensor:
    """Entropy (nats) of each image's ``n_bins``-bin histogram, as ``scipy.stats.entropy(np.histogram(a, n_bins)[0])``
    -> [B] float64."""
    a = _rows(a)
    lo, hi = a.min(1, keepdim=True).values, a.max(1, keepdim=True).values
    flat = lo == hi  # NumPy widens an empty range to [v - 0.5, v + 0.5]
    lo, hi = torch.where(flat, lo - 0.5, lo), torch.where(flat, hi + 0.5, hi)
    steps = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64, device=a.device)
    edges = lo + (hi - lo) * steps  # np.linspace(lo, hi, n_bins + 1)
    edges[:, -1:] = hi
    idx = ((a - lo) * (n_bins / (hi - lo))).floor().long().clamp(0, n_bins - 1)
    # NumPy's corrections: a value below its bin's left edge moves down, one at or past the right edge moves up
    idx = idx - (a < edges.gather(1, idx)).long()
    up = (a >= edges.gather(1, idx + 1)) & (idx != n_bins - 1)
    idx = (idx + up.long()).clamp(0, n_bins - 1)
    counts = torch.zeros(a.shape[0], n_bins, dtype=torch.float64, device=a.device)
    counts.scatter_add_(1, idx, torch.ones_like(a))
    p = counts / counts.sum(1, keepdim=True)
    return -(torch.where(p > 0, p * p.log(), torch.zeros_like(p))).sum(1)


def normalise_by_max(a: torch.Tensor) -> torch.Tensor:
    """a / max|a| per image (a map of zeros left as it is)."""
    m = a.reshape(a.shape[0], -1).abs().amax(1).view(-1, *([1] * (a.dim() - 1)))
    return torch.where(m > 0, a / torch.where(m > 0, m, torch.ones_like(m)), a)


def normalise_by_second_moment(a: torch.Tensor) -> torch.Tensor:
    """a / sqrt(mean(a^2)) per image (Binder et al., 2022; a map of zeros left as it is)."""
    m = a.reshape(a.shape[0], -1).square().mean(1).sqrt().view(-1, *([1] * (a.dim() - 1)))
    return torch.where(m > 0, a / torch.where(m > 0, m, torch.ones_like(m)), a)


NORMALISATIONS = {"max": normalise_by_max, "second_moment": normalise_by_second_moment}


__all__ = ["NORMALISATIONS", "SIMILARITIES", "average_ranks", "discrete_entropy", "normalise_by_max",
           "normalise_by_second_moment", "pearson", "similarity", "spearman", "ssim"]
