"""Attribution methods, one module per family, each registered under its config name.

Adding a method = one module here with ``@register_method("name")`` + ``configs/method/name.yaml``.
"""
from .._autoload import import_submodules
from .base import METHODS, Attribution, AttributionMethod, PathMethod, register_method

import_submodules(__name__, __path__)

__all__ = ["METHODS", "Attribution", "AttributionMethod", "PathMethod", "register_method"]
