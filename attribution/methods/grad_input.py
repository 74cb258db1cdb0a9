"""Gradient x Input against a baseline (Shrikumar et al. 2016; the authors' ``GradInputExplainer``).

attr = grad f(x) * (x - b), with b the baseline (default "black" = normalise(0), the papers' "zero"), so with
the ImageNet normalisation x - b = x_pixel / std per channel (docs/upstream_methods.md section 2.3).
Not a path method: ``Attribution.f_start``/``f_end`` are None (no completeness); ``extras["f_x"]`` holds f(x).
Cost per image: 1 forward+backward row.
"""
from .base import Attribution, AttributionMethod, register_method


@register_method("grad_input")
class GradientInput(AttributionMethod):
    name = "grad_input"
    is_path = False

    def __init__(self, baseline="black", objective: str = "prob", max_batch=None, mean=None, std=None,
                 autocast=False):
        super().__init__(2, baseline, objective, max_batch, mean, std, autocast)
        self.n_steps = 1  # one gradient; kept for a uniform repr

    def _attribute(self, model, x, target):
        b = self.baseline_for(x)
        grad, fx = self.evaluator.grad(model, x, target)
        return Attribution(grad * (x - b), None, None, {"f_x": fx})

    def cost(self, height=256, width=256):
        return {"fb": 1, "f": 0}

    def __repr__(self):
        return f"GradientInput(baseline={self.baseline!r}, objective={self.objective!r})"
