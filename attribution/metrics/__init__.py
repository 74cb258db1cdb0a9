"""Faithfulness metrics: per-image outputs, batched on the device, each registered under its config name."""
from .base import METRICS, Metric, register_metric
from . import completeness  # noqa: F401  (registration)

__all__ = ["METRICS", "Metric", "register_metric"]
