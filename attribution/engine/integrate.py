"""Path integration: how the gradients along a path become an attribution.

A path p_0 (baseline end) .. p_P (input end) with gradients g_j = grad f(p_j) and values f_j = f(p_j) is combined
segment by segment (:class:`PathSum`):

- ``integration="path"`` (the papers' left Riemann sum, the authors' ``compute_ig``):
  attr = sum_{j=0}^{P-1} g_j * (p_{j+1} - p_j);
- ``integration="idgi"`` (Important Direction Gradient Integration, Yang, Wang and Bilgic, CVPR 2023):
  attr = sum_{j=0}^{P-1} (g_j * g_j / ||g_j||^2) * (f_{j+1} - f_j). It needs no pass beyond the path's own (f_j is
  the forward of g_j's backward) and sums to f(p_P) - f(p_0) exactly. A segment whose gradient is 0 everywhere
  contributes 0 (the authors' numpy divides by 0).

The gradient at the last point is never needed, so it is not computed (upstream computes and discards it).
Other quadrature rules for fixed paths (right, midpoint, trapezoid, Gauss-Legendre; non-uniform spacing) are in
:mod:`attribution.engine.rules`.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import check_choice
from .gradients import GradientEvaluator
from .rules import adaptive_boundaries, n_segments, probe_intervals, quadrature, uniform_boundaries

INTEGRATIONS = ("path", "idgi")


def check_integration(integration: str) -> str:
    return check_choice("integration", integration, INTEGRATIONS,
                        allowed=f"choose one of {list(INTEGRATIONS)} (path: the sum of gradient x step along the "
                                f"path; idgi: Important Direction Gradient Integration)")


class PathSum:
    """Accumulates an attribution over consecutive path segments, in order (see the module docstring).

    ``add(grads, scores, steps)`` takes S segments at once: gradients and f at their start points [B,S,...] / [B,S]
    and the steps p_{j+1} - p_j [B,S,...]; ``finish(f_end)`` closes the last segment with f at the path's end and
    returns attr [B,...] (in the dtype of what was added). IDGI keeps each chunk's last segment open until the
    next chunk's first f (or ``f_end``) arrives.
    """

    def __init__(self, integration: str = "path"):
        self.integration = check_integration(integration)
        self.attr = None
        self._open = None  # IDGI: (weights [B,...], f at the segment's start [B]) waiting for f at its end

    def _accumulate(self, contrib):
        self.attr = contrib if self.attr is None else self.attr + contrib

    def _close(self, f_next: torch.Tensor):
        if self._open is not None:
            w, f0 = self._open
            self._accumulate(w * (f_next - f0).to(w.dtype).view(-1, *([1] * (w.dim() - 1))))
            self._open = None

    def add(self, grads: torch.Tensor, scores: torch.Tensor, steps: torch.Tensor) -> None:
        if self.integration == "path":
            self._accumulate((grads * steps).sum(1))
            return
        self._close(scores[:, 0])
        w = idgi_weights(grads).to(steps.dtype)  # [B, S, ...]
        d = (scores[:, 1:] - scores[:, :-1]).to(steps.dtype)
        if d.shape[1]:
            self._accumulate((w[:, :-1] * d.view(*d.shape, *([1] * (w.dim() - 2)))).sum(1))
        self._open = (w[:, -1], scores[:, -1])

    def finish(self, f_end: torch.Tensor) -> torch.Tensor:
        self._close(f_end)
        return self.attr


def idgi_weights(grads: torch.Tensor) -> torch.Tensor:
    """g * g / ||g||^2 per gradient of a [B, S, ...] stack (0 where g = 0), in float64."""
    g2 = grads.double().pow(2)
    norm = g2.flatten(2).sum(2).view(*g2.shape[:2], *([1] * (g2.dim() - 2)))
    return torch.where(norm > 0, g2 / norm.clamp_min(torch.finfo(torch.float64).tiny), torch.zeros_like(g2))


def integrate_path(model, points_fn: Callable[[int, int], torch.Tensor], n_points: int, target: torch.Tensor,
                   evaluator: GradientEvaluator, batch: int, row_shape=None,
                   integration: str = "path") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Integrate along a path given as ``points_fn(start, stop) -> [B, stop-start, C,H,W]`` (``integration``: the
    left Riemann sum "path" or "idgi", see :class:`PathSum`).

    Points are built chunk by chunk (never the whole [B,P,C,H,W] stack), images x steps batched together; a chunk
    holds ``evaluator.chunk_size(device, row_shape)`` rows (``row_shape`` = (C, H, W) of one point).
    Returns (attr [B,C,H,W], f at the first point [B], f at the last point [B]).
    """
    if n_points < 2:
        raise ValueError("a path needs at least 2 points")
    device = target.device
    total = PathSum(integration)
    f_start = None
    start = 0
    last_point = None
    while start < n_points - 1:
        steps_per_chunk = max(1, evaluator.chunk_size(device, row_shape) // max(1, batch))
        stop = min(n_points - 1, start + steps_per_chunk)
        pts = points_fn(start, stop + 1)  # [B, stop-start+1, ...] including the next segment's end
        grads, scores = evaluator.grad_stack(model, pts[:, :-1].contiguous(), target)
        total.add(grads, scores, pts[:, 1:] - pts[:, :-1])
        if f_start is None:
            f_start = scores[:, 0]
        last_point = pts[:, -1]
        start = stop
    f_end = evaluator.score(model, last_point, target)
    return total.finish(f_end), f_start, f_end


def integrate_rule(model, points_at: Callable[[torch.Tensor], torch.Tensor], rule: str, spacing: str,
                   evaluations: int, target: torch.Tensor, evaluator: GradientEvaluator, batch: int, row_shape=None,
                   integration: str = "path") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Integrate a fixed path ``points_at(alphas [B, S] float64) -> [B, S, C,H,W]`` with quadrature ``rule`` on
    ``spacing`` and m = ``evaluations`` gradients (:mod:`attribution.engine.rules`), chunked as
    :func:`integrate_path`; the left rule goes through :class:`PathSum` (so IDGI works on any spacing).
    Returns (attr [B,C,H,W], f(p(0)) [B], f(p(1)) [B])."""
    device = target.device
    segments = n_segments(rule, evaluations)

    def per_chunk() -> int:
        return max(1, evaluator.chunk_size(device, row_shape) // max(1, batch))

    ends = {0: None, segments: None}  # f at the path's two ends, by boundary index
    if spacing == "adaptive":
        probes = uniform_boundaries(probe_intervals(rule, evaluations)).to(device)
        f_probe = []
        for s in range(0, len(probes), per_chunk()):
            a = probes[s:s + per_chunk()].expand(batch, -1)
            pts = points_at(a)
            f_probe.append(evaluator.score(model, pts.reshape(-1, *pts.shape[2:]),
                                           target.repeat_interleave(a.shape[1])).view(batch, -1))
        f_probe = torch.cat(f_probe, 1)
        bounds = adaptive_boundaries(probes, f_probe, segments).to(device)
        ends = {0: f_probe[:, 0], segments: f_probe[:, -1]}
    else:
        bounds = uniform_boundaries(segments).to(device).expand(batch, -1)
    quad = quadrature(rule, bounds)
    total = PathSum(integration if rule == "left" else "path")
    k, m = 0, len(quad)
    while k < m:
        e = min(m, k + per_chunk())
        lower, upper, tag_index = quad.lower[k:e], quad.upper[k:e], quad.tag_index[k:e]
        lo, hi = int(lower.min()), int(upper.max())
        bpts = points_at(quad.boundaries[:, lo:hi + 1])
        tpts = bpts[:, tag_index - lo] if bool((tag_index >= 0).all()) else points_at(quad.tags[:, k:e])
        grads, scores = evaluator.grad_stack(model, tpts.contiguous(), target)
        steps = bpts[:, upper - lo] - bpts[:, lower - lo]
        if rule != "left":
            steps = steps * quad.scale[k:e].to(steps).view(1, -1, *([1] * (steps.dim() - 2)))
        total.add(grads, scores, steps)
        for at in ends:
            if ends[at] is not None or not lo <= at <= hi:
                continue
            hit = (tag_index == at).nonzero()
            if not len(hit) and bool((quad.tag_index == at).any()):
                continue  # a later chunk takes the gradient there, and f with it
            ends[at] = scores[:, int(hit[0])] if len(hit) else evaluator.score(model, bpts[:, at - lo], target)
        k = e
    return total.finish(ends[segments]), ends[0], ends[segments]


def completeness_error(attr: torch.Tensor, f_end: torch.Tensor, f_start: torch.Tensor) -> torch.Tensor:
    """|sum(attr) - (f(end) - f(start))| / |f(end) - f(start)| per image (docs/design.md, Numerics)."""
    total = attr.flatten(1).double().sum(1)
    delta = (f_end - f_start).double()
    return ((total - delta).abs() / delta.abs().clamp_min(1e-12)).float()
