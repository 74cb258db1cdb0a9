"""Completeness error of a path attribution against a straight baseline (IG's axiom):
|sum(attr) - (f(x) - f(x'))| / |f(x) - f(x')| per image."""
import torch

from ..engine.gradients import GradientEvaluator
from ..engine.integrate import completeness_error
from ..engine.normalize import resolve_baseline
from .base import Metric, register_metric


@register_metric("completeness", columns=(("completeness_error", "CompErr (metric)", "min"),))
class Completeness(Metric):
    """Options: ``baseline`` (as for methods), ``objective`` ("prob" | "logit"), ``mean``/``std``."""

    name = "completeness"
    nan_means_bad_output = True

    def __init__(self, baseline="black", objective="prob", mean=None, std=None, max_batch=None):
        super().__init__(mean, std, max_batch)
        self.baseline = baseline
        self.evaluator = GradientEvaluator(objective, chunker=self.chunker)

    def compute(self, model, x, attr, target):
        b = resolve_baseline(x, self.baseline, self.norm)
        f = self.evaluator.score(model, torch.cat([x, b]), torch.cat([target, target]))
        fx, fb = f[: len(x)], f[len(x):]
        return {"completeness_error": completeness_error(attr, fx, fb), "f_x": fx, "f_baseline": fb}
