"""The base of a modifier that wraps a method (noise averaging, XRAI)."""
from __future__ import annotations

from ..errors import ConfigError
from ..methods.base import AttributionMethod


class MethodWrapper(AttributionMethod):
    """A modifier around ``method``: it shares, not copies, the method's normalisation, evaluator (so ``max_batch``
    and chunking are the method's own) and objective; ``group`` names the modifier's keys in errors."""

    def __init__(self, method: AttributionMethod, group: str):
        if not isinstance(method, AttributionMethod):
            raise ConfigError(f"invalid {group}.method={method!r}: an AttributionMethod instance")
        self.method = method
        self.norm, self.evaluator, self.objective = method.norm, method.evaluator, method.objective
        self.needs_vae = method.needs_vae
