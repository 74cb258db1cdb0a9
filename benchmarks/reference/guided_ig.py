"""Guided IG as the MA-GIG / SIG authors run it (``GIGExplainer`` / ``GuidedPathGenerator``), an "unbounded"
variant of PAIR's ``guided_ig_impl`` (docs/upstream_methods.md section 2.4), and the inner loop it shares with
MA-GIG's latent version (section 2.5)."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .core import NO_CLOCK, compute_ig, grad_at, lerp

EPS = 1e-9  # the authors' tolerance for "already at the input" and for the L1 test


def guided_inner(cur: torch.Tensor, end: torch.Tensor, grad: torch.Tensor, l1_target: torch.Tensor, fraction: float,
                 partial: Callable = lerp, gamma_floor: float | None = 1e-6) -> torch.Tensor:
    """One guided step's inner loop, in place on ``cur`` (any shape; ``grad`` is overwritten): move the features
    with the smallest |gradient| to ``end`` until cur sits at L1 distance ``l1_target`` from it.

    ``partial(gamma, cur[S], end[S])`` makes the last, partial move: lerp for Guided IG, lerp or slerp for MA-GIG.
    ``gamma_floor``: Guided IG's drift guard (SIG tolerates |gamma| <= 1e-6 and stops; MA-GIG's pixel version
    asserts gamma > 0 and would crash, section 9.3); None for MA-GIG's latent loop, where both asserts are commented
    out and a negative gamma (after a slerp overshoot) moves the selection away (section 2.5)."""
    gamma = math.inf
    while gamma > 1:
        diff = (cur - end).abs()
        l1_cur = diff.sum()
        # float32 sums of ~1e5 terms compared at 1e-9: exact equality, so the loop normally ends on a partial move
        if torch.isclose(l1_target, l1_cur, rtol=EPS, atol=EPS):
            break
        # features already at the input are excluded (+inf persists across the inner passes: grad is in place)
        grad[diff < EPS] = math.inf
        # the 'lower' quantile over ALL features, the +inf ones included, as ``torch.quantile`` computes it
        thr = torch.quantile(grad.abs().flatten(), fraction, interpolation="lower")
        sel = (grad.abs() <= thr) & (grad != math.inf)  # ties at the threshold are all selected
        l1_s = (diff * sel).sum()
        if float(l1_s) <= 0:
            break  # upstream sets gamma = inf here and loops forever; stop instead (never reached on real data)
        gamma = float((l1_cur - l1_target) / l1_s)
        if gamma > 1:
            cur[sel] = end[sel]  # the selected features move all the way, then the loop selects again
        elif gamma_floor is not None and gamma <= gamma_floor:
            break  # float drift: the target is (about) met already; no move
        else:
            cur[sel] = partial(gamma, cur[sel], end[sel])  # hit the L1 target exactly (lerp), then exit
    return cur


def guided_ig_path(model, x: torch.Tensor, baseline: torch.Tensor, target, n_steps: int = 200,
                   fraction: float = 0.1, objective: str = "prob", clock=NO_CLOCK,
                   max_steps: int | None = None) -> torch.Tensor:
    """The authors' guided path of one image [C,H,W] -> N points [N,C,H,W].

    ``max_steps`` (timing only) stops after that many guided steps and ends the path at the current point;
    ``clock.phase("path")`` times each step."""
    steps = n_steps - 1 if max_steps is None else min(n_steps - 1, max(1, int(max_steps)))
    # no max_dist: alpha is fixed to [0, 1], so the path runs from x_min = b to x_max = x
    cur = baseline.clone()
    l1_total = (x - cur).abs().sum()
    path = []
    for s in range(steps):
        with clock.phase("path"):
            path.append(cur.clone())
            # one forward+backward per step on x_cur[None]; each image is steered by its own target (upstream passes
            # the whole label batch, section 9.1: identical at DiffID's batch 1)
            g = grad_at(model, cur[None], target, objective)[0]
            # the L1 schedule L (1 - (s+1)/N) for points 0..N-2; the last point is x, so the last segment spans 2/N
            # of the distance (PAIR takes N steps and reaches x at step N)
            guided_inner(cur, x, g, l1_total * (1 - (s + 1) / n_steps), fraction, lerp)
    # s = N - 1 stores x itself (or, cut short for timing, where the path got to)
    path.append(x.clone() if steps == n_steps - 1 else cur.clone())
    return torch.stack(path)


def authors_guided_ig(model, x: torch.Tensor, baseline: torch.Tensor, target, n_steps: int = 200, fraction: float = 0.1,
                      objective: str = "prob", clock=NO_CLOCK, max_steps: int | None = None) -> torch.Tensor:
    """Guided IG of one image: the guided path (N - 1 forward+backward), then ``compute_ig`` on its N points, which
    recomputes every gradient the path already had: 2N - 1 passes per image (sections 2.4, 9.11)."""
    path = guided_ig_path(model, x, baseline, target, n_steps, fraction, objective, clock, max_steps)
    with clock.phase("integrate", len(path)):
        return compute_ig(model, path, target, objective)
