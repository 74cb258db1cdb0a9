"""Gradient x Input against a baseline (Shrikumar et al. 2016; the authors' ``GradInputExplainer``).

attr = grad f(x) * (x - b), with b the baseline (default "black" = normalise(0), the papers' "zero"), so with
the ImageNet normalisation x - b = x_pixel / std per channel (docs/upstream_methods.md section 2.3).
Not a path method: ``Attribution.f_start``/``f_end`` are None (no completeness); ``extras["f_x"]`` holds f(x).
Cost per image: 1 forward+backward row.
"""
from ..engine.normalize import resolve_baseline
from .base import Attribution, AttributionMethod, check_baseline, register_method


@register_method("grad_input", display="G×I", latex=r"G$\times$I", order=0,
                 aliases=("gxi", "gradxinput", "gradinput", "gradientxinput", "gradient×input"))
class GradientInput(AttributionMethod):
    name = "grad_input"
    is_path = False

    def __init__(self, baseline="black", **kwargs):
        super().__init__(**kwargs)
        self.baseline = check_baseline(baseline)

    def baseline_for(self, x):
        return resolve_baseline(x, self.baseline, self.norm)

    def _attribute(self, model, x, target):
        b = self.baseline_for(x)
        grad, fx = self.evaluator.grad(model, x, target)
        return Attribution(grad * (x - b), None, None, {"f_x": fx})

    def cost(self, height=256, width=256):
        return {"fb": 1, "f": 0}

    def __repr__(self):
        return f"GradientInput(baseline={self.baseline!r}, objective={self.objective!r})"
