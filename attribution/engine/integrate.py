"""Path integration: the left Riemann sum of the authors' ``compute_ig``, streamed over chunks of steps.

attr = sum_{k=0}^{P-2} grad f(p_k) * (p_{k+1} - p_k), for P path points p_0 (baseline end) .. p_{P-1} (input end).
The gradient at the last point is never needed, so it is not computed (upstream computes and discards it).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from .gradients import GradientEvaluator


def integrate_path(model, points_fn: Callable[[int, int], torch.Tensor], n_points: int, target: torch.Tensor,
                   evaluator: GradientEvaluator, batch: int,
                   row_shape=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left Riemann sum over a path given as ``points_fn(start, stop) -> [B, stop-start, C,H,W]``.

    Points are built chunk by chunk (never the whole [B,P,C,H,W] stack), images x steps batched together; a chunk
    holds ``evaluator.chunk_size(device, row_shape)`` rows (``row_shape`` = (C, H, W) of one point).
    Returns (attr [B,C,H,W], f at the first point [B], f at the last point [B]).
    """
    if n_points < 2:
        raise ValueError("a path needs at least 2 points")
    device = target.device
    steps_per_chunk = max(1, evaluator.chunk_size(device, row_shape) // max(1, batch))
    attr = None
    f_start = None
    start = 0
    last_point = None
    while start < n_points - 1:
        stop = min(n_points - 1, start + steps_per_chunk)
        pts = points_fn(start, stop + 1)  # [B, stop-start+1, ...] including the next segment's end
        grads, scores = evaluator.grad_stack(model, pts[:, :-1].contiguous(), target)
        contrib = (grads * (pts[:, 1:] - pts[:, :-1])).sum(1)
        attr = contrib if attr is None else attr + contrib
        if f_start is None:
            f_start = scores[:, 0]
        last_point = pts[:, -1]
        start = stop
        steps_per_chunk = max(1, evaluator.chunk_size(device, row_shape) // max(1, batch))
    f_end = evaluator.score(model, last_point, target)
    return attr, f_start, f_end


def completeness_error(attr: torch.Tensor, f_end: torch.Tensor, f_start: torch.Tensor) -> torch.Tensor:
    """|sum(attr) - (f(end) - f(start))| / |f(end) - f(start)| per image (docs/design.md, Numerics)."""
    total = attr.flatten(1).double().sum(1)
    delta = (f_end - f_start).double()
    return ((total - delta).abs() / delta.abs().clamp_min(1e-12)).float()
