"""Shared machinery: normalisation and baselines, the objective, batched gradients, path integration."""
from .gradients import GradientEvaluator, PassCounter
from .integrate import completeness_error, integrate_path
from .normalize import Normalizer, gaussian_blur, resolve_baseline
from .objective import target_score

__all__ = [
    "Normalizer", "resolve_baseline", "gaussian_blur", "target_score", "GradientEvaluator", "PassCounter",
    "integrate_path", "completeness_error",
]
