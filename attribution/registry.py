"""A tiny name -> factory registry (timm style): ``register`` decorates, ``build`` constructs."""
from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Dict, List


class Registry:
    """Maps config names to factories and builds them with validated keyword arguments."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable:
        def deco(factory: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = factory
            factory.registered_name = name
            return factory

        return deco

    def names(self) -> List[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Callable:
        if name not in self._entries:
            close = difflib.get_close_matches(str(name), self.names(), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise KeyError(f"unknown {self.kind} {name!r}.{hint} Choose one of: {', '.join(self.names())}")
        return self._entries[name]

    def build(self, name: str, **kwargs: Any) -> Any:
        factory = self.get(name)
        _check_kwargs(self.kind, name, factory, kwargs)
        return factory(**kwargs)


def _check_kwargs(kind: str, name: str, factory: Callable, kwargs: Dict[str, Any]) -> None:
    """Fail before any work on a keyword the factory does not take, listing the ones it does."""
    params = inspect.signature(factory).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    allowed = [p for p in params if p != "self"]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(f"{kind} {name!r} got unknown option(s) {unknown}; allowed: {sorted(allowed)}")
