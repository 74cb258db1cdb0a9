"""Path-based feature attribution on image classifiers: methods and faithfulness metrics.

    import attribution
    method = attribution.build_method("guided_ig", n_steps=200, fraction=0.1, mean=MEAN, std=STD)
    attr = method(model, x, target)              # [B,C,H,W] -> [B,C,H,W] float32
    metric = attribution.build_metric("diffid")
    scores = metric(model, x, attr, target)      # dict of per-image tensors
"""
from .errors import ConfigError
from .methods import METHODS, Attribution, AttributionMethod, register_method
from .metrics import METRICS, register_metric
from .engine import PassCounter

__version__ = "0.1.0"


def available_methods():
    """Names accepted by :func:`build_method`, sorted."""
    return METHODS.names()


def build_method(name: str, **kwargs) -> AttributionMethod:
    """Build a registered method; keyword names equal the keys of ``configs/method/<name>.yaml``."""
    return METHODS.build(name, **kwargs)


def available_metrics():
    """Names accepted by :func:`build_metric`, sorted."""
    return METRICS.names()


def build_metric(name: str, **kwargs):
    """Build a registered metric, called as ``metric(model, x, attr, target) -> {name: [B] tensor}``."""
    return METRICS.build(name, **kwargs)


__all__ = ["available_methods", "build_method", "available_metrics", "build_metric", "register_method",
           "register_metric", "Attribution", "AttributionMethod", "PassCounter", "ConfigError"]
