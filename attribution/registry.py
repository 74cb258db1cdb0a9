"""Name -> factory registries (timm style), with the facts about each entry filed beside it.

``register(name, **facts)`` decorates a class; ``build(name, **options)`` constructs it after checking the
option names; ``info(name)`` returns the entry's facts (display name, paper order, what it needs, its output
columns), so that every consumer (tables, the demo's sweep, the speed study) asks the registry instead of keeping
its own list.

Option names follow the class hierarchy: a class declares only its own options and passes ``**kwargs`` on to its
base, and the accepted names are the union along the MRO up to the first ``__init__`` without ``**kwargs``.
"""
from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import UnknownNameError, UnknownOptionError

_NO_DEFAULT = inspect.Parameter.empty


@dataclass(frozen=True)
class MethodInfo:
    """Facts about a registered attribution method.

    ``order`` places it among the papers' table rows (0-10 for the papers' methods, 50 for others, which then sort
    alphabetically, 99 for the random control); ``latex`` defaults to ``display``; ``aliases`` are extra
    lower-case spellings used by published tables."""

    name: str
    display: str
    latex: str
    order: float
    needs_vae: bool
    needs_bank: bool
    is_path: bool
    aliases: tuple[str, ...]
    factory: Any = field(repr=False, compare=False)


@dataclass(frozen=True)
class Column:
    """One scalar output of a metric: its key, its table label and its direction ("max": higher is better)."""

    key: str
    label: str
    direction: str

    def __post_init__(self):
        if self.direction not in ("max", "min"):
            raise ValueError(f"Column {self.key!r}: direction must be 'max' or 'min', not {self.direction!r}")


@dataclass(frozen=True)
class MetricInfo:
    """Facts about a registered metric: its scalar ``columns`` and the x positions (``levels``) of its curves at
    default settings (None: evenly spaced on [0, 1])."""

    name: str
    columns: tuple[Column, ...]
    levels: tuple[float, ...] | None
    factory: Any = field(repr=False, compare=False)

    def direction(self, key: str) -> str | None:
        return next((c.direction for c in self.columns if c.key == key), None)


def option_parameters(factory: Callable) -> dict[str, inspect.Parameter] | None:
    """The keyword options ``factory`` accepts, with their defaults, along the class hierarchy.

    None means "anything" (a function with ``**kwargs``). A class may drop an inherited option it has no use for
    by listing it in ``excluded_options`` (a tuple, or a dict {option: why}, whose reason errors quote)."""
    if not inspect.isclass(factory):
        params = inspect.signature(factory).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return None
        return {n: p for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    found: dict[str, inspect.Parameter] = {}
    for cls in factory.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        if cls is object:
            break
        params = list(inspect.signature(init).parameters.values())[1:]  # without self
        for p in params:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                found.setdefault(p.name, p)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    for name in getattr(factory, "excluded_options", ()):
        found.pop(name, None)
    return found


def takes_option(factory: Callable, name: str) -> bool:
    """Whether ``factory`` accepts the keyword option ``name`` (along the class hierarchy)."""
    params = option_parameters(factory)
    return params is None or name in params


def option_defaults(factory: Callable) -> dict[str, Any]:
    """{option: default} for the options of ``factory`` that have a default."""
    params = option_parameters(factory) or {}
    return {n: p.default for n, p in params.items() if p.default is not _NO_DEFAULT}


class Registry:
    """Maps config names to factories; builds them with checked option names; keeps each entry's facts."""

    def __init__(self, kind: str, make_info: Callable[..., Any] | None = None):
        self.kind = kind
        self._make_info = make_info
        self._entries: dict[str, Callable[..., Any]] = {}
        self._info: dict[str, Any] = {}

    def register(self, name: str, **facts: Any) -> Callable:
        def deco(factory: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = factory
            factory.registered_name = name
            if self._make_info is not None:
                self._info[name] = self._make_info(name, factory, **facts)
            return factory

        return deco

    def unregister(self, name: str) -> None:
        """Remove an entry (for tests that register a throw-away one)."""
        self._entries.pop(name, None)
        self._info.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> Callable:
        if name not in self._entries:
            close = difflib.get_close_matches(str(name), self.names(), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(f"unknown {self.kind} {name!r}.{hint} Choose one of: {', '.join(self.names())}")
        return self._entries[name]

    def info(self, name: str):
        self.get(name)
        return self._info[name]

    def options(self, name: str) -> dict[str, Any]:
        """{option: default} that ``build(name, ...)`` accepts (no default: ``inspect.Parameter.empty``)."""
        params = option_parameters(self.get(name)) or {}
        return {n: p.default for n, p in params.items()}

    def check_options(self, name: str, kwargs: dict[str, Any]) -> None:
        """Fail before any work on an option the entry does not take, listing the ones it does."""
        params = option_parameters(self.get(name))
        if params is None:
            return
        unknown = sorted(set(kwargs) - set(params))
        reasons = getattr(self.get(name), "excluded_options", None)
        why = [f"{k}: {reasons[k]}" for k in unknown if isinstance(reasons, dict) and k in reasons]
        if why:
            raise UnknownOptionError(f"{self.kind} {name!r} does not take {unknown}: {'; '.join(why)}")
        if unknown:
            raise UnknownOptionError(f"{self.kind} {name!r} got unknown option(s) {unknown}; "
                                     f"allowed: {sorted(params)}")

    def build(self, name: str, **kwargs: Any) -> Any:
        self.check_options(name, kwargs)
        return self.get(name)(**kwargs)
