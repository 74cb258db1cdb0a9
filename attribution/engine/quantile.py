"""Quantile selection, one home: the 'lower' quantile of Guided IG and MA-GIG, and SAMP's row-wise quantiles."""
from __future__ import annotations

import math

import torch

QUANTILE_MAX_NUMEL = 1 << 24  # torch.quantile refuses larger inputs in some releases


def lower_quantile_index(fraction: float, d: int, rank_dtype: torch.dtype = torch.float32) -> int:
    """0-based index of ``quantile(v, fraction, interpolation='lower')`` in sorted(v) for len(v) = d.

    As ``torch.quantile``: ``fraction`` is first rounded to ``rank_dtype`` (the input's dtype; float32 for the
    authors' tensors, float64 for numpy's rank as in PAIR saliency), then the rank floor(q * (d - 1)) is formed in
    double."""
    q = torch.tensor(float(fraction), dtype=rank_dtype).item()
    return min(max(math.floor(q * (d - 1)), 0), d - 1)


def lower_quantile(values: torch.Tensor, fraction: float, rank_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Per-row ``quantile(values, fraction, interpolation='lower')`` over all D entries (+inf included).

    Equals ``sorted(row)[floor(fraction * (D - 1))]``, via ``kthvalue``. ``fraction`` is first rounded to
    ``rank_dtype`` (default: the values' dtype, exactly as ``torch.quantile`` does, which the authors call on
    float32); pass ``torch.float64`` for numpy's rank (PAIR saliency). The two differ by one index for a few
    (fraction, D), e.g. (0.7, 11): float32 gives 6, float64 gives 7; for the benchmarked (0.1, 3*256*256) and
    (0.05, 4096) they agree.
    """
    k = lower_quantile_index(fraction, values.shape[1], rank_dtype or values.dtype)
    return torch.kthvalue(values, k + 1, dim=1).values


def row_quantile(v: torch.Tensor, q: float, interpolation: str) -> torch.Tensor:
    """torch.quantile over the last dim of [N, D] (keepdim), in row chunks small enough for torch."""
    rows = max(1, QUANTILE_MAX_NUMEL // max(1, v.shape[1]))
    return torch.cat([torch.quantile(v[s:s + rows], q=q, dim=-1, interpolation=interpolation, keepdim=True)
                      for s in range(0, v.shape[0], rows)])
