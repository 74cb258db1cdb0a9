"""Quadrature rules and step spacings for fixed paths p(alpha), alpha in [0, 1] (IG, Blur IG, SIG, EIG).

Every rule is a list of m gradient evaluations k, each with a tag a_k (where the gradient is taken), a sub-interval
[l_k, u_k] and a scale s_k, and the attribution is the Riemann-Stieltjes sum

    attr = sum_k s_k * grad f(p(a_k)) * (p(u_k) - p(l_k)).

On boundaries 0 = t_0 < ... < t_M = 1:

- ``left`` (the papers' default): a_k = l_k = t_k, u_k = t_{k+1}, M = m;
- ``right``: a_k = u_k = t_{k+1}, l_k = t_k;  ``middle``: a_k = (t_k + t_{k+1}) / 2;
- ``trapezoid``: a_k = t_k for k = 0..M (m = M + 1), [l_k, u_k] = [t_{k-1}, t_{k+1}] clipped to [t_0, t_M], s_k = 1/2:
  (g_k + g_{k+1}) / 2 on each segment;
- ``gausslegendre``: the m Gauss-Legendre nodes on [0, 1], t_{k+1} = t_k + w_k (w_k the node weights, which sum to 1;
  the cumulative weights separate the nodes), so each node lies in its own sub-interval.

On a straight path p(u) - p(l) = (u - l)(x - b), so attr = (x - b) sum_k s_k (u_k - l_k) g_k: the quadrature weights of
captum's ``IntegratedGradients(method=...)``: riemann_left/right/middle and gausslegendre are equal to ours with
m = ``n_steps - 1`` evaluations; captum's ``riemann_trapezoid`` uses step 1/m on a grid of spacing 1/(m - 1), so its
weights sum to (m - 1)/m: ours (summing to 1) equal captum's times m/(m - 1).

Budget: every rule takes m = ``n_steps - 1`` gradient evaluations (the left sum's count), so rules compare at equal
cost. Spacing of the boundaries:

- ``uniform``: t_j = j / M;
- ``adaptive`` (the adaptive sampling of Integrated Decision Gradients, Walker et al., AAAI 2024): f is probed at
  q + 1 uniform alphas (q = :func:`probe_count`, forward passes only); probe interval i receives 1 + its share, by
  largest remainder, of the other M - q segments in proportion to |f(alpha_{i+1}) - f(alpha_i)|, each split
  uniformly. Steps go where f changes fastest; f at the path's two ends comes from the probes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import check_choice

RULES = ("left", "right", "middle", "trapezoid", "gausslegendre")
SPACINGS = ("uniform", "adaptive")


def check_rule(rule: str) -> str:
    return check_choice("rule", rule, RULES)


def check_spacing(spacing: str) -> str:
    return check_choice("spacing", spacing, SPACINGS)


@dataclass
class Quadrature:
    """m evaluations on boundaries t [B, M + 1] (per image; 0 .. 1): evaluation k takes the gradient at ``tags[:, k]``
    and the step p(t[:, upper[k]]) - p(t[:, lower[k]]) times ``scale[k]``; ``tag_index[k]`` is the boundary the tag
    sits on, or -1 (the tag is a point of its own)."""

    boundaries: torch.Tensor
    tags: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor
    scale: torch.Tensor
    tag_index: torch.Tensor

    def weights(self) -> torch.Tensor:
        """s_k (u_k - l_k) [B, m]: the weight of g_k on a straight path."""
        return self.scale * (self.boundaries[:, self.upper] - self.boundaries[:, self.lower])

    def __len__(self):
        return len(self.lower)


def n_segments(rule: str, evaluations: int) -> int:
    """M, the number of boundary intervals of ``rule`` with m = ``evaluations`` gradients."""
    return evaluations - 1 if rule == "trapezoid" else evaluations


def probe_count(evaluations: int) -> int:
    """q, the probe intervals of the adaptive spacing: a quarter of the evaluations, at least 2 (at most M)."""
    return max(2, evaluations // 4)


def uniform_boundaries(segments: int) -> torch.Tensor:
    return torch.arange(segments + 1, dtype=torch.float64) / segments


def adaptive_boundaries(probe_alphas: torch.Tensor, probe_f: torch.Tensor, segments: int) -> torch.Tensor:
    """Boundaries [B, M + 1] from f at the probes [B, q + 1] (IDG's adaptive sampling, see the module docstring)."""
    q = probe_alphas.numel() - 1
    if segments < q:
        raise ValueError(f"{segments} segments cannot cover {q} probe intervals")
    change = (probe_f[:, 1:] - probe_f[:, :-1]).double().abs().cpu().numpy()  # [B, q]
    extra = segments - q
    rows = []
    a = probe_alphas.double().cpu().numpy()
    for c in change:
        share = c / c.sum() * extra if c.sum() > 0 else np.full(q, extra / q)
        counts = np.floor(share).astype(int)
        left_over = extra - counts.sum()
        order = np.argsort(-(share - counts), kind="stable")  # largest remainder
        counts[order[:left_over]] += 1
        counts += 1
        pts = [a[0]]
        for i, n in enumerate(counts):
            pts.extend(a[i] + (a[i + 1] - a[i]) * np.arange(1, n + 1) / n)
        rows.append(pts)
    out = torch.tensor(np.array(rows), dtype=torch.float64)
    out[:, -1] = 1.0
    return out


def quadrature(rule: str, boundaries: torch.Tensor) -> Quadrature:
    """The evaluations of ``rule`` on ``boundaries`` [B, M + 1] (each row 0 .. 1); ``gausslegendre`` places its m = M
    nodes itself (its boundaries are the cumulative weights)."""
    t = boundaries.double()
    b, m1 = t.shape
    seg = torch.arange(m1 - 1)
    one = torch.ones(m1 - 1, dtype=torch.float64)
    if rule == "gausslegendre":
        nodes, w = np.polynomial.legendre.leggauss(m1 - 1)
        cum = torch.cat([torch.zeros(1, dtype=torch.float64), torch.tensor(np.cumsum(0.5 * w), dtype=torch.float64)])
        cum[-1] = 1.0
        tags = torch.tensor(0.5 * (1 + nodes), dtype=torch.float64).expand(b, -1)
        return Quadrature(cum.expand(b, -1).to(t.device), tags.to(t.device), seg, seg + 1, one,
                          torch.full_like(seg, -1))
    if rule == "left":
        return Quadrature(t, t[:, :-1], seg, seg + 1, one, seg)
    if rule == "right":
        return Quadrature(t, t[:, 1:], seg, seg + 1, one, seg + 1)
    if rule == "middle":
        return Quadrature(t, (t[:, :-1] + t[:, 1:]) / 2, seg, seg + 1, one, torch.full_like(seg, -1))
    if rule == "trapezoid":
        k = torch.arange(m1)
        return Quadrature(t, t, (k - 1).clamp_min(0), (k + 1).clamp_max(m1 - 1), torch.full((m1,), 0.5,
                          dtype=torch.float64), k)
    raise ValueError(f"unknown rule {rule!r}")


def rule_forwards(rule: str, spacing: str, evaluations: int) -> int:
    """Forward-only passes per image beside the m gradients: f at the path ends the rule does not evaluate, or the
    adaptive spacing's q + 1 probes (which include both ends)."""
    if spacing == "adaptive":
        return probe_intervals(rule, evaluations) + 1
    return {"left": 1, "right": 1, "middle": 2, "gausslegendre": 2, "trapezoid": 0}[rule]


def probe_intervals(rule: str, evaluations: int) -> int:
    """q for the adaptive spacing: :func:`probe_count`, at most M and at least 1."""
    return max(1, min(probe_count(evaluations), n_segments(rule, evaluations)))
