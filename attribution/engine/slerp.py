"""Spherical linear interpolation of flat vectors, as the MA-GIG authors' ``slerp`` (latent paths and moves)."""
from __future__ import annotations

import torch

DOT_THRESHOLD = 0.9995


def slerp_coefficients(t, v0: torch.Tensor, v1: torch.Tensor, dot_threshold: float = DOT_THRESHOLD):
    """Coefficients (c0, c1) with slerp(t, v0, v1) = c0 * v0 + c1 * v1, each row of v0/v1 [B, D] one flat vector.

    As the MA-GIG authors' ``slerp``: theta = acos(clamp(<v0/|v0|, v1/|v1|>, -1, 1)),
    c0 = sin((1 - t) theta) / sin theta, c1 = sin(t theta) / sin theta; plain lerp (c0 = 1 - t, c1 = t) for rows
    where |v0| or |v1| < 1e-9 or |cos theta| > ``dot_threshold``. No norm interpolation. ``t`` is a number, a [B]
    tensor, or a [B, K] tensor (K values per row); c0 and c1 have t's (broadcast) shape, in float64.
    """
    v0, v1 = v0.double(), v1.double()
    n0, n1 = v0.norm(dim=1), v1.norm(dim=1)
    dot = ((v0 / n0.clamp_min(1e-300).unsqueeze(1)) * (v1 / n1.clamp_min(1e-300).unsqueeze(1))).sum(1)
    dot = dot.clamp(-1.0, 1.0)
    use_lerp = (n0 < 1e-9) | (n1 < 1e-9) | (dot.abs() > dot_threshold)
    t = torch.as_tensor(t, dtype=torch.float64, device=v0.device)
    if t.dim() == 0:
        t = t.expand(v0.shape[0])
    extra = (1,) * (t.dim() - 1)
    theta = torch.acos(dot).view(-1, *extra)
    sin = torch.sin(theta)
    safe = torch.where(sin.abs() > 0, sin, torch.ones_like(sin))
    c0 = torch.sin(theta - theta * t) / safe
    c1 = torch.sin(theta * t) / safe
    lerp = use_lerp.view(-1, *extra)
    return torch.where(lerp, 1.0 - t, c0), torch.where(lerp, t, c1)


def slerp(t, v0: torch.Tensor, v1: torch.Tensor, dot_threshold: float = DOT_THRESHOLD) -> torch.Tensor:
    """Row-wise slerp of [B, D] vectors (see :func:`slerp_coefficients`) -> [B, D], or [B, K, D] for t [B, K]."""
    c0, c1 = slerp_coefficients(t, v0, v1, dot_threshold)
    if c0.dim() == 2:
        out = c0.unsqueeze(-1) * v0.double().unsqueeze(1) + c1.unsqueeze(-1) * v1.double().unsqueeze(1)
    else:
        out = c0.unsqueeze(-1) * v0.double() + c1.unsqueeze(-1) * v1.double()
    return out.to(v0.dtype)


def slerp_move(current: torch.Tensor, end: torch.Tensor, gamma: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Guided-IG partial move by slerp (MA-GIG): each row's masked sub-vector moves along the great circle from
    ``current[mask]`` to ``end[mask]`` by gamma [B] (a ``partial_move`` hook of
    :func:`attribution.engine.guided.guided_step`)."""
    zero = torch.zeros_like(current)
    c0, c1 = slerp_coefficients(gamma, torch.where(mask, current, zero), torch.where(mask, end, zero))
    return (c0.unsqueeze(1) * current.double() + c1.unsqueeze(1) * end.double()).to(current.dtype)
