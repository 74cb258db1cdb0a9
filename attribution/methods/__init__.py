"""Attribution methods, one module per family, each registered under its config name."""
from .base import METHODS, Attribution, AttributionMethod, register_method
from . import ig  # noqa: F401  (registration)

__all__ = ["METHODS", "Attribution", "AttributionMethod", "register_method"]
