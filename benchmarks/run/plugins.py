"""Configs for methods that installed packages register (entry points ``attribution.methods``): a method without a
``configs/method/<name>.yaml`` gets one from its registered options and defaults, so ``method=<name>`` composes as
for a built-in method. A YAML of the same name in the user's config folder (``hydra.searchpath`` or
``--config-dir``) comes first."""
from __future__ import annotations

import inspect
import warnings
from pathlib import Path

from attribution.errors import ConfigError

from .config import CONFIG_DIR

#: options the runner sets itself, never in a method's config
RUNTIME_OPTIONS = ("mean", "std", "vae", "references", "registered_name")
_PLAIN = (type(None), bool, int, float, str)


def _plain(value) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return isinstance(value, _PLAIN)


def method_node(name: str) -> dict:
    """``{"name": name, option: default, ...}``: the config a registered method gets without a YAML (options whose
    default a config cannot hold, such as a tensor, are left to the method's own default)."""
    from attribution.methods import METHODS

    opts = METHODS.options(name)
    return {"name": name, **{k: list(v) if isinstance(v, tuple) else v for k, v in opts.items()
                             if k not in RUNTIME_OPTIONS and v is not inspect.Parameter.empty and _plain(v)}}


def register_plugin_configs() -> list[str]:
    """Store a ``method/<name>`` config in Hydra's ConfigStore for every registered method without a YAML in
    ``configs/method/``; returns their names. A plugin that fails to load is reported when the run plans."""
    from hydra.core.config_store import ConfigStore

    from attribution.methods import METHODS

    try:
        names = METHODS.names()
    except ConfigError:
        return []
    have = {p.stem for p in Path(CONFIG_DIR, "method").glob("*.yaml")}
    added = [n for n in names if n not in have]
    if added:  # a YAML of the user's folder of the same name is merged onto the node (its values win): as intended
        warnings.filterwarnings("ignore", message=r"(?s).*is validated against ConfigStore schema with the same name")
    for name in added:
        ConfigStore.instance().store(group="method", name=name, node=method_node(name))
    return added


def target_method(target: str, name: str | None) -> str:
    """The registered name of the method class a config names by ``_target_`` (a class of the user's own
    package): importing it runs its ``@register_method``; an undecorated class is registered under ``name``."""
    import importlib

    from attribution.methods import METHODS

    module, _, attr = str(target).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise ConfigError(f"invalid method._target_={target!r}: {type(e).__name__}: {e}; name an importable "
                          f"class, e.g. mypackage.methods.MyMethod") from None
    known = next((n for n in METHODS.names() if METHODS.get(n) is cls), None)
    if known is None:
        if not name:
            raise ConfigError(f"method._target_={target!r} is not a registered method: give the config a name "
                              f"(method.name=...) or decorate the class with @register_method")
        METHODS.register(str(name))(cls)
        return str(name)
    if name and name != known:
        raise ConfigError(f"method._target_={target!r} is registered as {known!r}, not {name!r}: set "
                          f"method.name={known} or drop it")
    return known
