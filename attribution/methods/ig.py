"""Integrated Gradients (Sundararajan et al., ICML 2017), as the MA-GIG/SIG authors compute it.

path_k = b + alpha_k (x - b), alpha_k = k/(N-1), k = 0..N-1 (N = ``n_steps`` points);
attr = sum_{k=0}^{N-2} grad f(path_k) * (path_{k+1} - path_k)  (left Riemann sum, ``compute_ig``).
Cost: N-1 forward+backward rows per image (upstream also computes the unused gradient at x: N) plus
one forward at x for the completeness check.
"""
import torch

from ..engine.integrate import integrate_path
from .base import Attribution, PathMethod, register_method


def linear_points(b: torch.Tensor, x: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """b + alpha (x - b) for each alpha -> [B, len(alphas), C, H, W]."""
    a = alphas.to(x).view(1, -1, 1, 1, 1)
    return b.unsqueeze(1) + a * (x - b).unsqueeze(1)


@register_method("ig", display="IG", order=1)
class IntegratedGradients(PathMethod):
    name = "ig"

    def _attribute(self, model, x, target):
        b = self.baseline_for(x)
        alphas = torch.linspace(0, 1, self.n_steps, dtype=torch.float64)
        attr, f0, f1 = integrate_path(
            model, lambda s, e: linear_points(b, x, alphas[s:e]), self.n_steps, target, self.evaluator, x.shape[0],
            row_shape=x.shape[1:])
        return Attribution(attr, f0, f1)

    def cost(self, height=256, width=256):
        return {"fb": self.n_steps - 1, "f": 1}
