"""Config helpers of the runner: shards, devices, seeding, the method's and the metrics' keywords, composition.

Nothing here loads data or weights.
"""
from __future__ import annotations

import inspect
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")
TARGETS = ("label", "pred")
#: the key of ``method_settings`` that applies to every method having the option (``"*"`` in YAML works too)
SHARED = "all"


def parse_shard(value) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) -> (i, n); also accepts an int i with n = 1 only for 0."""
    text = str(value).strip()
    try:
        i, n = (int(p) for p in text.split("/")) if "/" in text else (int(text), 1)
    except ValueError:
        i, n = -1, 0
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"invalid shard={value!r}: write it as i/n with 0 <= i < n, e.g. shard=0/4")
    return i, n


def shard_slice(n_items: int, shard: tuple[int, int]) -> range:
    """Indices of the i-th of n contiguous, near-equal slices of ``range(n_items)``."""
    i, n = shard
    return range(i * n_items // n, (i + 1) * n_items // n)


def resolve_embedded(obj):
    """Replace every ``embedded:<asset>`` string (a source/checkpoint value) by its local path."""
    if isinstance(obj, dict):
        return {k: resolve_embedded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [resolve_embedded(v) for v in obj]
    if isinstance(obj, str) and obj.startswith("embedded:"):
        from ..assets.embedded import resolve_source

        return resolve_source(obj)
    return obj


def select_device(name: str) -> torch.device:
    name = str(name or "auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"invalid device={name!r}: CUDA is not available here; use device=cpu or device=auto")
    return dev


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def method_config(cfg: dict[str, Any], overridden: Sequence[str] = ()) -> dict[str, Any]:
    """The method's keyword arguments: ``cfg.method`` updated by ``cfg.method_settings``.

    ``method_settings`` (set by experiments, e.g. the demo's reduced step counts) maps ``"*"`` (or ``all``, the
    spelling the command line can write: ``+method_settings.all.n_steps=8``) to values applied to
    the keys a method already has, and a method name to values applied to that method. A key given on the command
    line as ``method.<key>=...`` (listed in ``overridden``) keeps the command line's value.
    """
    mcfg = dict(cfg["method"])
    name = mcfg.get("name")
    settings = cfg.get("method_settings") or {}
    keep = set(overridden)
    shared = {**(settings.get("*") or {}), **(settings.get(SHARED) or {})}
    for key, value in shared.items():
        if key in mcfg and key not in keep:
            mcfg[key] = value
    for key, value in (settings.get(name) or {}).items():
        if key not in keep:
            mcfg[key] = value
    return mcfg


def metrics_config(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``cfg.metrics`` -> ``{column prefix: {"metric": registered name, "options": {...}}}``.

    ``cfg.metrics`` maps a name to the metric's options (keywords of ``attribution.build_metric``; null = defaults).
    The name is the registered metric unless the options say ``metric: <registered name>``, which lets one metric
    appear twice with different options (e.g. ``diffid_blur: {metric: diffid, fill: blur}``); ``enabled: false``
    drops an entry. Result columns are ``<name>.<key>``.
    """
    out = {}
    for name, opts in (cfg.get("metrics") or {}).items():
        opts = dict(opts or {})
        if opts.pop("enabled", True):
            out[str(name)] = {"metric": str(opts.pop("metric", name)), "options": opts}
    return out


def metric_defaults(name: str) -> dict[str, Any]:
    """{option: default} of a registered metric (a Quantus adapter: its own options and its Quantus settings)."""
    from attribution.metrics import METRICS
    from attribution.registry import option_defaults

    defaults = {k: v for k, v in METRICS.options(name).items() if v is not inspect.Parameter.empty}
    if name.startswith("quantus"):
        from attribution.metrics.quantus_adapter import QUANTUS_METRICS, QuantusMetric

        defaults = {**option_defaults(QuantusMetric), **(QUANTUS_METRICS.get(name, ("", "", {}))[2])}
    return defaults


def metric_hash(spec: dict[str, Any]) -> str:
    """The hash a stored row keeps of the metric config that scored it: options at their default are left out, so
    listing a default in a YAML (or on the command line) re-scores nothing."""
    from ..io import provenance

    defaults = metric_defaults(spec["metric"])
    same = provenance.canonical_json
    options = {k: v for k, v in spec["options"].items() if not (k in defaults and same(v) == same(defaults[k]))}
    return provenance.config_hash({**spec, "options": options})


def _cli_method_keys(overrides: Sequence[str]) -> list[str]:
    keys = []
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if key.startswith("method."):
            keys.append(key.split(".", 1)[1])
    return keys


def _takes(factory, name: str) -> bool:
    from attribution.registry import takes_option

    return takes_option(factory, name)


def compose_config(overrides: Sequence[str] = (), job_name: str = "benchmarks") -> dict[str, Any]:
    """The resolved runner config for ``overrides`` (Hydra's Compose API on ``configs/``) as a plain dict: what
    ``python -m benchmarks.run <overrides>`` runs."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None, job_name=job_name):
        return OmegaConf.to_container(compose("config", overrides=list(overrides)), resolve=True)


def sweep_params(overrides: Sequence[str] = ()) -> dict[str, list[str]]:
    """The multirun axes an experiment's config declares (``hydra.sweeper.params``), as lists of choices, e.g.
    ``sweep_params(["experiment=table1"])["method"]`` -> the table-1 methods."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None, job_name="sweep_params"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    params = OmegaConf.to_container(OmegaConf.select(cfg, "hydra.sweeper.params") or {}, resolve=False)
    return {str(k): [v.strip() for v in str(val).split(",") if v.strip()] for k, val in params.items()}
