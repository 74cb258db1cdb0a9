"""Path-based feature attribution on image classifiers: methods and faithfulness metrics.

    import attribution
    method = attribution.build_method("guided_ig", n_steps=200, fraction=0.1, mean=MEAN, std=STD)
    attr = method(model, x, target)              # [B,C,H,W] -> [B,C,H,W] float32
    metric = attribution.build_metric("diffid")
    scores = metric(model, x, attr, target)      # dict of per-image tensors
"""
from .engine import PassCounter
from .errors import ConfigError, UnknownNameError, UnknownOptionError
from .methods import METHODS, Attribution, AttributionMethod, PathMethod, register_method
from .metrics import METRICS, register_metric
from .modifiers import split_variant, variant_label, wrap
from .modifiers import variant_name as _variant_name
from .registry import Column, MethodInfo, MetricInfo

__version__ = "0.1.0"


def available_methods():
    """Names accepted by :func:`build_method`, sorted."""
    return METHODS.names()


def build_method(name: str, noise=None, post=None, **kwargs) -> AttributionMethod:
    """Build a registered method; keyword names equal the keys of ``configs/method/<name>.yaml``.

    ``noise`` (SmoothGrad and kin) and ``post`` (XRAI) wrap the method (:func:`attribution.modifiers.wrap`); the path
    modifiers (``baseline="expected"``, ``integration``, ``rule``, ``spacing``) are the method's own options."""
    method = METHODS.build(name, **kwargs)
    return wrap(method, noise, post) if noise is not None or post is not None else method


def variant_name(name: str, options: dict | None = None, noise=None, post=None) -> str:
    """The name tables and the store give ``name`` built with ``options``/``noise``/``post``: "guided_ig+idgi"."""
    return _variant_name(name, options or {}, noise, post)


def variant_display(variant: str) -> str:
    """A variant's table label: "GIG + IDGI", "SIG + EG", "IG (SG)" (from the registry's display name)."""
    base, tokens = split_variant(variant)
    if base not in METHODS:
        return str(variant)
    return variant_label(METHODS.info(base).display, tokens)


def method_info(name: str) -> MethodInfo:
    """The registered facts about a method: display and LaTeX names, paper order, whether it needs a VAE or a
    reference bank, whether it is a path method (see :class:`attribution.registry.MethodInfo`)."""
    return METHODS.info(name)


def method_options(name: str) -> dict:
    """{option: default} that :func:`build_method` accepts for ``name`` (along the class hierarchy)."""
    return METHODS.options(name)


def available_metrics():
    """Names accepted by :func:`build_metric`, sorted."""
    return METRICS.names()


def build_metric(name: str, **kwargs):
    """Build a registered metric, called as ``metric(model, x, attr, target) -> {name: [B] tensor}``."""
    return METRICS.build(name, **kwargs)


def metric_info(name: str) -> MetricInfo:
    """The registered facts about a metric: its scalar output columns with their direction, its curve levels."""
    return METRICS.info(name)


__all__ = ["available_methods", "build_method", "variant_name", "variant_display", "method_info", "method_options",
           "available_metrics",
           "build_metric", "metric_info", "register_method", "register_metric", "Attribution", "AttributionMethod",
           "PathMethod", "PassCounter", "ConfigError", "UnknownNameError", "UnknownOptionError", "Column",
           "MethodInfo", "MetricInfo"]
