"""Shared machinery: normalisation and baselines, the objective, batched gradients, path integration."""
from .normalize import Normalizer, resolve_baseline, gaussian_blur
from .objective import target_score
from .gradients import GradientEvaluator, PassCounter
from .integrate import integrate_path, completeness_error

__all__ = [
    "Normalizer", "resolve_baseline", "gaussian_blur", "target_score", "GradientEvaluator", "PassCounter",
    "integrate_path", "completeness_error",
]
