"""Name -> factory registries (timm style), with the facts about each entry filed beside it.

``register(name, **facts)`` decorates a class; ``build(name, **options)`` constructs it after checking the
option names; ``info(name)`` returns the entry's facts (display name, paper order, what it needs, its output
columns), so that every consumer (tables, the demo's sweep, the speed study) asks the registry instead of keeping
its own list.

Installed packages add entries without a fork: a class (or a module whose import registers one) named by an entry
point of the group ``attribution.methods`` or ``attribution.metrics`` is loaded on the registry's first query, once;
a plugin that fails to load stops with one line naming its package and entry point (:class:`PluginError`).

Option names follow the class hierarchy: a class declares only its own options and passes ``**kwargs`` on to its
base, and the accepted names are the union along the MRO up to the first ``__init__`` without ``**kwargs``.
"""
from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError, UnknownNameError, UnknownOptionError

_NO_DEFAULT = inspect.Parameter.empty
#: the entry-point group whose plugins each registry loads (``[project.entry-points."attribution.methods"]``)
PLUGIN_GROUPS = {"method": "attribution.methods", "metric": "attribution.metrics"}


class PluginError(ConfigError):
    """An installed plugin (an entry point of :data:`PLUGIN_GROUPS`) failed to load."""


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

    def __init__(self, kind: str, make_info: Callable[..., Any] | None = None, group: str | None = None):
        self.kind = kind
        self._make_info = make_info
        self._entries: dict[str, Callable[..., Any]] = {}
        self._info: dict[str, Any] = {}
        self.group = group or PLUGIN_GROUPS.get(kind)
        self._plugins: str = "unloaded"  # "unloaded" | "loading" | "loaded"
        self._plugin_error: PluginError | None = None

    def load_plugins(self) -> None:
        """Import the entry points of ``self.group`` (once); an entry point naming an unregistered class or
        function registers it under the entry point's name."""
        if self._plugin_error is not None:
            raise self._plugin_error
        if self._plugins != "unloaded" or not self.group:
            return
        self._plugins = "loading"  # a plugin's own import queries the registry: no second load
        from importlib.metadata import entry_points

        try:
            for ep in sorted(entry_points(group=self.group), key=lambda e: e.name):
                self._load_one(ep)
        finally:
            self._plugins = "loaded"

    def _load_one(self, ep) -> None:
        dist = getattr(getattr(ep, "dist", None), "name", None) or ep.value.split(":")[0].split(".")[0]
        try:
            obj = ep.load()
            if callable(obj) and not any(f is obj for f in self._entries.values()) and ep.name not in self._entries:
                self.register(ep.name)(obj)
        except Exception as e:  # noqa: BLE001 - any failure of a plugin's import is reported in one line
            why = " ".join(f"{type(e).__name__}: {e}".split())
            self._plugin_error = PluginError(
                f"{self.kind} plugin of package {dist!r} failed to load (entry point {self.group}: "
                f"{ep.name} = {ep.value}): {why}. Fix that package or uninstall it (pip uninstall {dist})")
            raise self._plugin_error from None

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
        self.load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self.load_plugins()
        return name in self._entries

    def get(self, name: str) -> Callable:
        self.load_plugins()
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
