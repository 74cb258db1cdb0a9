"""Integrated Gradients (Sundararajan et al., ICML 2017), as the MA-GIG/SIG authors compute it.

path_k = b + alpha_k (x - b), alpha_k = k/(N-1), k = 0..N-1 (N = ``n_steps`` points);
attr = sum_{k=0}^{N-2} grad f(path_k) * (path_{k+1} - path_k)  (left Riemann sum, ``compute_ig``).
Other quadrature rules (``rule``, ``spacing``) and IDGI (``integration``): :class:`FixedPathMethod`.

Expected Gradients (``baseline="expected"``; Erion et al., Nature Machine Intelligence 2021): per image, n =
``n_samples`` draws of a bank baseline b_s and alpha_s ~ U(0, 1), attr = (1/n) sum_s (x - b_s) * grad f(b_s +
alpha_s (x - b_s)): captum's ``GradientShap`` with ``stdevs=0``. ``n_steps`` is then unused; f_start is the mean of
f(b_s), so the completeness error measures how far the n-sample estimate is from its expectation.

Cost: N-1 forward+backward rows per image (upstream also computes the unused gradient at x: N) plus one forward at
x for the completeness check; Expected Gradients: n forward+backward rows, n + 1 forwards.
"""
import torch

from ..engine.seeding import rand_per_image
from .base import Attribution, FixedPathMethod, register_method


def linear_points(b: torch.Tensor, x: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """b + alpha (x - b) for each alpha ([S] shared, or [B, S] per image) -> [B, S, C, H, W]."""
    a = alphas.to(x).view(-1 if alphas.dim() == 2 else 1, alphas.shape[-1], 1, 1, 1)
    return b.unsqueeze(1) + a * (x - b).unsqueeze(1)


@register_method("ig", display="IG", order=1)
class IntegratedGradients(FixedPathMethod):
    name = "ig"

    def path_points(self, x):
        b = self.baseline_for(x)
        alphas = torch.linspace(0, 1, self.n_steps, dtype=torch.float64)
        return (lambda s, e: linear_points(b, x, alphas[s:e])), (lambda a: linear_points(b, x, a))

    def _attribute(self, model, x, target):
        points, points_at = self.path_points(x)
        attr, f0, f1 = self.integrate(model, x, target, points, points_at, self.n_steps)
        return Attribution(attr, f0, f1)

    def _expected(self, model, x, target, baselines):
        n = baselines.shape[1]
        alphas = rand_per_image(x, n, self.seed + 1).to(x.dtype)  # [B, n], a stream apart from the bank indices
        pts = baselines + alphas.view(*alphas.shape, 1, 1, 1) * (x.unsqueeze(1) - baselines)
        grads, _ = self.evaluator.grad_stack(model, pts, target)
        attr = ((x.unsqueeze(1) - baselines) * grads).mean(1)
        f_b = self.evaluator.score(model, baselines.flatten(0, 1), target.repeat_interleave(n)).view(-1, n)
        return Attribution(attr, f_b.mean(1), self.evaluator.score(model, x, target))

    def path_cost(self, height=256, width=256):
        return {"fb": self.n_steps - 1, "f": 1}

    def cost(self, height=256, width=256):
        if self.expected:
            return {"fb": self.n_samples, "f": self.n_samples + 1}
        return super().cost(height, width)
