"""Guided Integrated Gradients (Kapishnikov et al., "Guided Integrated Gradients: an Adaptive Path Method for
Removing Noise", CVPR 2021), in the unbounded form (PAIR ``max_dist=1``) the MA-GIG/SIG authors benchmark as ``gig``.

The path starts at the baseline b and reaches the input x. At each step the gradient g_s = grad f(p_s) picks the
``fraction`` of features with the smallest |g_s|, which move towards x until the L1 distance to x has shrunk to
its target (see :mod:`attribution.engine.guided`). The attribution is the left Riemann sum along the stored points

    attr = sum_k grad f(p_k) * (p_{k+1} - p_k).

Schedules (N = ``n_steps``):
- ``"authors"`` (default, upstream ``GuidedPathGenerator`` + ``compute_ig``): N stored points p_0 = b, p_1..p_{N-2}
  at L1 distance L (1 - k/N) from x, and p_{N-1} = x. The last segment therefore spans 2/N of L (the others 1/N),
  and the step that would reach L/N is never needed (not computed here).
- ``"pair"`` (PAIR saliency ``GuidedIG(max_dist=1.0)``): N gradient steps and N + 1 points, p_N at L1 distance 0,
  every segment 1/N of L; the 'lower' quantile's rank is taken in float64 as numpy does (the authors' torch.quantile
  takes it in float32, which differs by one index for a few (fraction, D) pairs).

Reuse: the gradient that steers step k *is* the integration gradient at p_k, so each path point costs one
forward+backward (upstream recomputes all of them in ``compute_ig``: 2N - 1 passes). See :meth:`GuidedIG.cost`.

Upstream bugs fixed (docs/upstream_methods.md section 9):
- label broadcast: upstream builds the steering objective with the whole label batch for a single image, so for
  B > 1 it steers by sum_j p_{y_j}(x_b). Here every image uses its own target (a batch equals each image alone).
- gamma <= 0 crash: MA-GIG asserts gamma > 0, which float32 rounding can violate. L1 sums and gamma are computed in
  float64 and a non-positive gamma (point already at its target) means no move.
Images are batched: per-image thresholds and targets are tensor ops, with no Python loop over images.
Reproducibility: the path follows the ranking of gradient magnitudes, so rounding differences (chunk size,
hardware, library versions, reduced precision) can select other features and take another route;
``python -m benchmarks.perf.precision`` measures by how much (results/precision/). Compare such maps through means
over images.
"""
from __future__ import annotations

import torch

from ..engine.guided import guided_step, l1_distance, l1_schedule
from ..engine.integrate import PathSum
from ..errors import check_choice, check_real
from .base import STEERED_PATH, Attribution, PathMethod, register_method

SCHEDULES = ("authors", "pair")


@register_method("guided_ig", display="GIG", order=5, aliases=("guidedig",))
class GuidedIG(PathMethod):
    """Guided IG. Args (besides those of :class:`PathMethod`):

    fraction: share of features (each scalar channel x pixel) selected per inner pass, in (0, 1]; paper 0.1.
    schedule: ``"authors"`` (N points, last segment 2/N, default) or ``"pair"`` (N equal intervals).
    """

    name = "guided_ig"
    excluded_options = STEERED_PATH

    def __init__(self, n_steps: int = 200, fraction: float = 0.1, schedule: str = "authors", **kwargs):
        super().__init__(n_steps=n_steps, **kwargs)
        self.fraction = check_real("fraction", fraction, 0, 1, low_open=True)
        self.schedule = check_choice("schedule", schedule, SCHEDULES)

    def _attribute(self, model, x, target):
        shape, n = x.shape, self.n_steps
        end = x.reshape(x.shape[0], -1)
        cur = self.baseline_for(x).reshape(x.shape[0], -1).clone()
        l1_total = l1_distance(cur, end)
        n_grad = n - 1 if self.schedule == "authors" else n
        total = PathSum(self.integration)
        f_start = None
        # quantile rank as torch.quantile on float32 (authors) or numpy in float64 (PAIR saliency)
        rank_dtype = torch.float64 if self.schedule == "pair" else None
        for s in range(n_grad):
            g, f = self.evaluator.grad(model, cur.view(shape), target)
            g = g.reshape(end.shape)
            if f_start is None:
                f_start = f
            if self.schedule == "authors" and s == n - 2:
                nxt = end  # upstream stores x as the last point; the step to L/N is never used
            else:
                nxt = guided_step(cur, end, g, l1_schedule(l1_total, s, n), self.fraction, rank_dtype=rank_dtype)
            total.add(g.double().unsqueeze(1), f.unsqueeze(1), (nxt.double() - cur.double()).unsqueeze(1))
            cur = nxt
        f_end = self.evaluator.score(model, x, target)
        return Attribution(total.finish(f_end).view(shape).float(), f_start, f_end)

    def path_cost(self, height=256, width=256):
        """Per image: forward+backward at each path point except the input end (N - 1 for "authors", N for
        "pair"; upstream "authors" needs 2N - 1), plus one forward at x for the completeness check."""
        return {"fb": self.n_steps - 1 if self.schedule == "authors" else self.n_steps, "f": 1}

    def __repr__(self):
        return (f"{type(self).__name__}(name={self.name!r}, n_steps={self.n_steps}, fraction={self.fraction}, "
                f"schedule={self.schedule!r})")
