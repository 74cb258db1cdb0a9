"""Faithfulness metrics: per-image outputs, batched on the device, each registered under its config name."""
from .._autoload import import_submodules
from .base import METRICS, Metric, register_metric

import_submodules(__name__, __path__)

__all__ = ["METRICS", "Metric", "register_metric"]
