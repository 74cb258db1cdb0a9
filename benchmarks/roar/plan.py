"""ROAR planning: the ``roar`` block of the config checked before any work, and the job list.

A *map* is a registered method (``ig``), the random control (``random``), the blur control of a method
(``ig+blur``: the method's pixel saliency blurred) or ``none`` (ratio 0: the classifier retrained on the unmodified
images, the reference every curve starts from). A *job* is one (map, ratio, repeat): one classifier trained from
scratch.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attribution.errors import ConfigError

from ..io import provenance

BLUR = "+blur"
NONE = "none"
TARGETS = ("pred", "label")
BASE_SOURCES = ("model", "train")
_KEYS = {"methods", "blur", "blur_sigma", "ratios", "method", "ratio", "fill", "modify_test", "tie_seed",
         "train_size", "test_size", "train_split", "test_split", "target", "include_unmodified", "repeats", "arch",
         "model_kwargs", "base", "retrain", "method_settings", "chunk"}
_TRAIN_KEYS = {"epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "schedule", "select"}


FILLS = ("channel_mean", "kept_mean")


@dataclass(frozen=True)
class Job:
    map: str
    ratio: float
    repeat: int = 0
    fill: str = "channel_mean"


def _fail(key: str, value, fix: str):
    raise ConfigError(f"invalid roar.{key}={value!r}: {fix}")


def base_method(map_name: str) -> str:
    """The registered method behind a map (``ig+blur`` -> ``ig``)."""
    return map_name[: -len(BLUR)] if map_name.endswith(BLUR) else map_name


def check(cfg: dict[str, Any]) -> dict[str, Any]:
    """The ``roar`` block, validated (every problem named with its key and fix, before any work)."""
    import attribution

    r = cfg.get("roar")
    if not isinstance(r, dict):
        raise ConfigError("no roar block in the config: choose an experiment with experiment=roar_mnist or "
                          "experiment=roar_cifar10")
    unknown = sorted(set(r) - _KEYS)
    if unknown:
        raise ConfigError(f"unknown roar key(s) {unknown}: allowed {sorted(_KEYS)}")
    known = attribution.available_methods()
    methods = list(r.get("methods") or [])
    if not methods:
        _fail("methods", r.get("methods"), f"a non-empty list of methods, from {known}")
    for m in methods:
        if m not in known:
            _fail("methods", m, f"choose from {known}")
        if attribution.method_info(m).needs_vae and not cfg.get("vae"):
            _fail("methods", m, "works in a VAE's latent space: choose one with vae=<name> (configs/vae/)")
    for m in r.get("blur") or []:
        if m not in methods:
            _fail("blur", m, f"the blur control is of a method in roar.methods {methods}")
    ratios = list(r.get("ratios") or [])
    if not ratios or any(not isinstance(x, (int, float)) or isinstance(x, bool) or not 0 < x < 1 for x in ratios):
        _fail("ratios", r.get("ratios"), "a non-empty list of fractions strictly between 0 and 1, e.g. [0.1,0.5,0.9]")
    if not fills(r) or any(f not in FILLS for f in fills(r)):
        _fail("fill", r.get("fill"), "channel_mean (Hooker et al.), kept_mean (the SIG authors' script) or a list "
                                     "of them (each a setting of its own)")
    if r.get("target") not in TARGETS:
        _fail("target", r.get("target"), f"one of {list(TARGETS)}")
    for key in ("repeats", "chunk"):
        v = r.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            _fail(key, v, "a positive integer")
    for key in ("train_size", "test_size"):
        v = r.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            _fail(key, v, "a positive integer or null (all)")
    if not isinstance(r.get("blur_sigma"), (int, float)) or r["blur_sigma"] <= 0:
        _fail("blur_sigma", r.get("blur_sigma"), "a positive number of pixels")
    base = r.get("base") or {}
    if base.get("source") not in BASE_SOURCES:
        _fail("base.source", base.get("source"), "model (the configured classifier) or train (trained here)")
    for block in ("base", "retrain"):
        spec = dict(r.get(block) or {})
        spec.pop("source", None)
        extra = sorted(set(spec) - _TRAIN_KEYS)
        if extra:
            _fail(block, extra, f"unknown training key(s); allowed {sorted(_TRAIN_KEYS)}")
        if spec.get("select", "final") not in ("final", "best_test"):
            _fail(f"{block}.select", spec.get("select"), "final (the last epoch) or best_test (the SIG authors' "
                                                         "choice: the epoch best on the test set)")
    if not r.get("arch"):
        _fail("arch", r.get("arch"), "the architecture retrained from scratch: a timm name or preact_resnet18")
    maps = all_maps(r)
    if r.get("method") is not None and r["method"] not in maps:
        _fail("method", r["method"], f"one map of this experiment: {maps}")
    if r.get("ratio") is not None and not any(abs(float(r["ratio"]) - x) < 1e-9 for x in ratios):
        _fail("ratio", r["ratio"], f"one of roar.ratios {ratios}")
    return r


def fills(r: dict[str, Any]) -> list[str]:
    """``roar.fill`` as a list (one name, or several: each a setting of the table)."""
    f = r.get("fill")
    return [f] if isinstance(f, str) else list(f or [])


def all_maps(r: dict[str, Any]) -> list[str]:
    """The maps of the experiment: its methods, then the blur controls, then ``none`` (ratio 0) if included."""
    return (list(r["methods"]) + [m + BLUR for m in r.get("blur") or []]
            + ([NONE] if r.get("include_unmodified") else []))


def jobs(r: dict[str, Any]) -> list[Job]:
    """Every (map, ratio, repeat) to train, restricted to ``roar.method`` / ``roar.ratio`` where they are set (one
    job each under a multirun over them). ``none`` has the single ratio 0 (it runs where ``roar.ratio`` is unset
    or is the first ratio, so a multirun over the ratios trains it once)."""
    maps = [r["method"]] if r.get("method") is not None else all_maps(r)
    ratios = [float(r["ratio"])] if r.get("ratio") is not None else [float(x) for x in r["ratios"]]
    out = []
    for m in maps:
        if m == NONE:  # nothing is filled: one reference for every fill
            if r.get("ratio") is None or abs(float(r["ratio"]) - float(r["ratios"][0])) < 1e-9:
                out += [Job(NONE, 0.0, k, "") for k in range(r["repeats"])]
            continue
        out += [Job(m, x, k, f) for f in fills(r) for x in ratios for k in range(r["repeats"])]
    return out


def roar_dir(cfg: dict[str, Any]) -> Path:
    """Where ROAR writes: ``<out_dir>/roar`` (its own store, caches, base model and tables)."""
    return Path(str(cfg.get("out_dir") or "results/adhoc")).expanduser() / "roar"


def data_key(cfg: dict[str, Any]) -> dict[str, Any]:
    """What the images depend on: the dataset config and the ROAR selection."""
    r = cfg["roar"]
    return {"dataset": {**cfg["dataset"], "manifest": None}, "train_split": r["train_split"],
            "test_split": r["test_split"], "train_size": r["train_size"], "test_size": r["test_size"]}


def base_key(cfg: dict[str, Any]) -> str:
    """The hash naming the attribution model: the configured classifier, or the one trained here."""
    r = cfg["roar"]
    if r["base"]["source"] == "model":
        return provenance.config_hash({"model": cfg["model"]})
    return provenance.config_hash({"arch": r["arch"], "model_kwargs": r.get("model_kwargs") or {},
                                   "base": r["base"], "data": data_key(cfg), "seed": cfg.get("seed"),
                                   "model": {k: cfg["model"].get(k) for k in ("mean", "std", "in_chans",
                                                                              "num_classes")}})


def job_hash(cfg: dict[str, Any], job: Job, method_cfg: dict[str, Any] | None) -> str:
    """The store's ``method_hash`` of a job: everything its accuracy depends on."""
    r = cfg["roar"]
    return provenance.config_hash({
        "map": job.map, "method": method_cfg, "ratio": job.ratio, "repeat": job.repeat, "base": base_key(cfg),
        "data": data_key(cfg), "fill": job.fill, "modify_test": r["modify_test"], "tie_seed": r["tie_seed"],
        "target": r["target"], "blur_sigma": r["blur_sigma"] if job.map.endswith(BLUR) else None,
        "arch": r["arch"], "model_kwargs": r.get("model_kwargs") or {}, "retrain": r["retrain"],
        "seed": cfg.get("seed")})
