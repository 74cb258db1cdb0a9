"""The inner loop of Guided IG (Kapishnikov et al., CVPR 2021) on flat ``[B, D]`` tensors, batched over rows.

One call moves every row's current point towards its end point until the row's L1 distance to the end equals
its target, changing only the features with the smallest |gradient| (docs/upstream_methods.md section 2.4)::

    repeat while gamma_b > 1 for some row b:
        exclude features already at the end (|cur - end| < eps): their |g| becomes +inf (persists)
        thr_b = sorted(|g_b|)[floor(fraction * (D - 1))]          # 'lower' quantile over all D entries, inf included
        S_b   = {i : |g_bi| <= thr_b, i not excluded}               # ties at the threshold are all selected
        gamma_b = (||cur_b - end_b||_1 - target_b) / sum_{i in S_b} |cur_bi - end_bi|
        gamma_b > 1:  cur_b[S_b] = end_b[S_b]                       # move the selection fully, go on
        else:         cur_b[S_b] = partial_move(cur_b, end_b, gamma_b)[S_b], row done   # lerp by default

Pixel Guided IG calls it on images flattened to [B, C*H*W]; latent MA-GIG on latents [B, 4096] with a slerp
``partial_move`` (:func:`attribution.engine.slerp.slerp_move`), gamma unclamped and |cur - end| in the latents'
float32 as the authors compute it. The gradient is used for selection only (it is not modified).

Differences from the authors' per-image code, all deliberate:
- batched over rows: per-row thresholds (``kthvalue``), per-row L1 targets and a masked loop that runs until every
  row is done; rows never interact (upstream's label-broadcast bug cannot occur here, the caller's per-row gradient
  is used as given);
- L1 sums and gamma in float64. A gamma <= 0 from rounding (the point already sits at or past its target) is
  clamped to 0 (no move) instead of MA-GIG's ``assert gamma > 0`` crash (SIG tolerates |gamma| <= 1e-6);
- a row whose selection is empty (nothing left to move, L1_S = 0) stops instead of looping forever.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from .quantile import lower_quantile

EPS = 1e-9

PartialMove = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def l1_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise ||a - b||_1 of [B, D] tensors, computed in float64 -> [B] float64."""
    return (a.double() - b.double()).abs().sum(1)


def lerp_move(current: torch.Tensor, end: torch.Tensor, gamma: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Default partial move: cur + gamma_b (end - cur), gamma [B] in float64; only ``mask`` entries are kept.

    A ``partial_move`` hook has this signature: (current [B,D], end [B,D], gamma [B] float64 in [0,1],
    mask [B,D] bool = the selected features of the rows that finish now) -> [B,D] (values outside the mask are
    ignored). A slerp hook treats each row's masked sub-vector as one vector. gamma lies in [0, 1] unless
    ``guided_step(clamp_gamma=False)``.
    """
    cur = current.double()
    return (cur + gamma.view(-1, 1) * (end.double() - cur)).to(current.dtype)


def native_lerp_move(current: torch.Tensor, end: torch.Tensor, gamma: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Partial move cur + (end - cur) * gamma_b in the points' own dtype (the MA-GIG authors' lerp)."""
    return current + (end - current) * gamma.to(current.dtype).unsqueeze(1)


def guided_step(current: torch.Tensor, end: torch.Tensor, grad: torch.Tensor, l1_target: torch.Tensor,
                fraction: float, partial_move: PartialMove | None = None, eps: float = EPS,
                clamp_gamma: bool = True, rank_dtype: torch.dtype | None = None,
                diff_dtype: torch.dtype | None = torch.float64, info: dict | None = None) -> torch.Tensor:
    """One Guided IG step for every row: the new point, at L1 distance ``l1_target`` [B] from ``end``.

    Args:
        current: [B, D] current points (not modified).
        end: [B, D] end points (the input x, or z_x in latent space).
        grad: [B, D] gradient of the objective at ``current`` (the selection criterion).
        l1_target: [B] desired ||new - end||_1 per row (any float dtype; compared in float64).
        fraction: share of the D features (by smallest |grad|) selected per inner pass, in (0, 1].
        partial_move: hook for the final, partial move of a row (see :func:`lerp_move`, the default).
        eps: features with |cur - end| < eps count as arrived; also the ``isclose`` tolerance of the L1 check.
        clamp_gamma: clamp the final gamma to [0, 1] (default; a gamma <= 0 can only come from rounding when every
            partial move meets its target exactly, as lerp does). A hook that can overshoot (slerp) may pass False,
            so that a negative gamma moves the selection back to the target, as MA-GIG's uncommented code does.
        rank_dtype: dtype of the quantile rank (see :func:`attribution.engine.quantile.lower_quantile`).
        diff_dtype: dtype in which |current - end| is formed before the float64 sums (default float64; None: the
            points' own dtype, as MA-GIG's authors compute it in float32).
        info: optional dict; receives ``"passes"``, the number of inner passes run (max over rows).
    Returns:
        [B, D] new points, same dtype as ``current``.
    """
    if current.shape != end.shape or current.shape != grad.shape or current.dim() != 2:
        raise ValueError(f"current, end and grad must be [B, D] tensors of one shape; got {tuple(current.shape)}, "
                         f"{tuple(end.shape)}, {tuple(grad.shape)}")
    move = partial_move or lerp_move
    cur = current.detach().clone()
    end = end.detach()
    target = l1_target.to(device=cur.device, dtype=torch.float64).reshape(-1)
    absg = grad.detach().abs().clone()
    absg[torch.isnan(absg)] = float("inf")
    active = torch.ones(cur.shape[0], dtype=torch.bool, device=cur.device)
    passes = 0
    while True:
        dt = diff_dtype or cur.dtype
        diff = (cur.to(dt) - end.to(dt)).abs()
        l1_cur = diff.double().sum(1)
        # upstream: torch.isclose(L_target, L_cur, rtol=atol=1e-9) ends the step
        active &= ~((l1_cur - target).abs() <= eps + eps * l1_cur.abs())
        if not bool(active.any()):
            break
        passes += 1
        arrived = diff < eps
        absg.masked_fill_(arrived, float("inf"))
        thr = lower_quantile(absg, fraction, rank_dtype)
        sel = (absg <= thr.unsqueeze(1)) & ~arrived & torch.isfinite(absg) & active.unsqueeze(1)
        l1_s = (diff.double() * sel).sum(1)
        movable = l1_s > 0
        gamma = torch.where(movable, (l1_cur - target) / torch.where(movable, l1_s, torch.ones_like(l1_s)),
                            torch.full_like(l1_s, float("inf")))
        full = active & movable & (gamma > 1)
        part = active & movable & (gamma <= 1)
        new = torch.where(sel & full.unsqueeze(1), end, cur)
        if bool(part.any()):
            pmask = sel & part.unsqueeze(1)
            g = gamma.clamp(0.0, 1.0) if clamp_gamma else gamma
            moved = move(cur, end, g.masked_fill(~part, 0.0), pmask)
            new = torch.where(pmask, moved.to(cur.dtype), new)
        cur = new
        active = full  # rows with an empty selection (not movable) stop; partial rows are done
    if info is not None:
        info["passes"] = passes
    return cur


def l1_schedule(l1_total: torch.Tensor, step: int, n_steps: int) -> torch.Tensor:
    """L1 target after step ``step`` (0-based) of ``n_steps``: L (1 - (step + 1) / N), float64 [B]."""
    return l1_total.double() * (1.0 - (step + 1) / n_steps)
