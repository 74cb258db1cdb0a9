"""Planning a run: validate the resolved config before any work (:func:`plan`), then load what it names
(:func:`build`); :func:`preflight` loads every dataset, classifier and VAE of a whole grid once.

Every name and value is checked first: Hydra lists the choices of a config group; the method and the metrics are
built (and so validated) before the dataset and the classifier are loaded.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from attribution.errors import ConfigError

from ..io import provenance
from . import manifests
from .checks import model_takes_images
from .config import (
    CONFIG_DIR,
    TARGETS,
    _cli_method_keys,
    _takes,
    method_config,
    metric_hash,
    metrics_config,
    parse_shard,
    resolve_embedded,
    seed_everything,
    select_device,
)

log = logging.getLogger("benchmarks.run")


@dataclass
class Setup:
    """Everything one run needs, built and validated from the resolved config."""

    cfg: dict[str, Any]
    device: torch.device
    shard: tuple[int, int]
    method_name: str  # the variant's name ("guided_ig+idgi"): the store's, the cache's and the tables' method
    method_cfg: dict[str, Any]
    method_hash: str
    setup_hash: str
    config_hash: str
    metric_cfgs: dict[str, dict[str, Any]]
    metric_hashes: dict[str, str]
    out_dir: Path
    needs_vae: bool = False
    base_method: str = ""  # the registered method the variant wraps
    noise: dict[str, Any] | None = None
    post: dict[str, Any] | None = None
    needs_bank: bool = False
    method_key: dict[str, Any] = field(default_factory=dict)  # the method's full config, stored with every row
    dataset: Any = None
    classifier: Any = None
    vae: Any = None
    method: Any = None
    metrics: dict[str, Any] = field(default_factory=dict)


def _build(kind: str, cfg: dict[str, Any], **extra):
    """Build a dataset/classifier/VAE from its config; a ``_target_`` key instantiates that class instead."""
    cfg = dict(cfg)
    if "_target_" in cfg:
        from hydra.utils import instantiate

        return instantiate({**cfg, **extra}, _convert_="all")
    if kind == "dataset":
        from attribution.datasets import build_dataset

        return build_dataset(**cfg, **extra)
    if kind == "model":
        from attribution.classifiers import build_classifier

        return build_classifier(**cfg, **extra)
    from attribution.vae import build_vae

    return build_vae(**cfg, **extra)


def plan(cfg: dict[str, Any], overrides: Sequence[str] = ()) -> Setup:
    """Validate the resolved config and derive hashes, without loading data or weights.

    Raises ``ValueError``/``KeyError``/``TypeError`` naming the bad key and the allowed values.
    """
    import attribution
    from attribution.methods import METHODS

    for key in ("dataset", "model", "method"):
        if not isinstance(cfg.get(key), dict) or not cfg[key]:
            raise ValueError(f"missing {key}: choose one with {key}=<name> (see configs/{key}/)")
    shard = parse_shard(cfg.get("shard", "0/1"))
    target = cfg.get("target", "label")
    if target not in TARGETS:
        raise ValueError(f"invalid target={target!r}: choose one of {list(TARGETS)}")
    for key in ("batch_size",):
        v = cfg.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"invalid {key}={v!r}: a positive integer")
    max_images = cfg.get("max_images")
    if max_images is not None and (not isinstance(max_images, int) or max_images < 1):
        raise ValueError(f"invalid max_images={max_images!r}: a positive integer or null")
    device = select_device(cfg.get("device", "auto"))

    mcfg = method_config(cfg, _cli_method_keys(overrides))
    if "_target_" in mcfg:  # a method class of the user's own package (benchmarks.run.plugins)
        from .plugins import target_method

        mcfg["name"] = target_method(mcfg.pop("_target_"), mcfg.get("name"))
    name = mcfg.pop("name", None)
    if name is None:
        raise ValueError("the method config has no 'name' key")
    METHODS.get(name)  # unknown name -> KeyError listing the registered methods
    if mcfg.get("autocast"):
        log.warning("method.autocast=%s: reduced precision changes the maps (how much, measured on real weights: "
                    "results/precision/); keep the float32 default for numbers you publish", mcfg["autocast"])
    info = attribution.method_info(name)
    needs_vae = info.needs_vae
    if needs_vae and not cfg.get("vae"):
        vaes = sorted(p.stem for p in Path(CONFIG_DIR, "vae").glob("*.yaml"))
        raise ValueError(f"method {name!r} works in a VAE's latent space: choose one with vae=<name>, one of "
                         f"{vaes} (configs/vae/)")
    noise, post = modifier_config(cfg, "noise"), modifier_config(cfg, "post")
    if needs_vae:  # names, then values against a stand-in VAE: the real one is loaded by build()
        _check_kwargs(METHODS, name, mcfg)
        checked = attribution.build_method(name, **mcfg, vae=_stand_in_vae(), noise=noise, post=post)
    else:  # building validates every value (raises ConfigError naming the key)
        checked = attribution.build_method(name, **mcfg, noise=noise, post=post)
    needs_bank = info.needs_bank or bool(getattr(innermost(checked), "needs_references", False))

    mets = metrics_config(cfg)
    if not mets:
        raise ValueError("no metrics configured: choose a set with metrics=<name> (see configs/metrics/)")
    for spec in mets.values():  # unknown name/option/value -> error naming the choices
        attribution.build_metric(spec["metric"], **spec["options"])

    vae_cfg = cfg.get("vae") if needs_vae else None
    # what the attribution depends on beyond the method's own keys: its VAE, the reference bank's size (IG2,
    # Expected Gradients) and the wrapping modifiers; modifier keys at their neutral values leave the hash as it was
    bank = int(cfg.get("reference_bank") or 100) if needs_bank else None
    extra = {"vae": vae_cfg, **({"reference_bank": bank} if bank else {}), **({"noise": noise} if noise else {}),
             **({"post": post} if post else {})}
    method_hash = provenance.config_hash({"name": name, **hashed_options(name, mcfg), **extra})
    method_key = {"name": name, **mcfg, **extra}  # every option, as the rows store it
    # which manifest file picked the images is no part of an image's result (its rows are kept by image id)
    dataset_key = {**cfg["dataset"], "manifest": None} if "manifest" in cfg["dataset"] else cfg["dataset"]
    setup_hash = provenance.config_hash({"dataset": dataset_key, "model": cfg["model"], "target": target,
                                         "seed": cfg.get("seed"), "max_images": max_images})
    out_dir = Path(str(cfg.get("out_dir") or "results/adhoc")).expanduser()
    variant = attribution.variant_name(name, mcfg, noise, post)
    return Setup(cfg=cfg, device=device, shard=shard, method_name=variant, base_method=name, noise=noise, post=post,
                 needs_bank=needs_bank, method_cfg=mcfg, method_hash=method_hash, method_key=method_key,
                 setup_hash=setup_hash, config_hash=provenance.config_hash(provenance.strip_keys(cfg)),
                 metric_cfgs=mets, metric_hashes={m: metric_hash(spec) for m, spec in mets.items()},
                 out_dir=out_dir, needs_vae=needs_vae)


#: method options whose neutral value is the method as it was before they existed: left out of the method hash
NEUTRAL = {"integration": "path", "rule": "left", "spacing": "uniform"}


def hashed_options(name: str, mcfg: dict[str, Any]) -> dict[str, Any]:
    """The method options that enter its hash: modifier options at their neutral values are left out, and so are
    Expected Gradients' ``n_samples``/``seed`` unless ``baseline`` is "expected" (so adding a modifier keeps every
    stored result of the plain method valid)."""
    from attribution import PathMethod
    from attribution.methods import METHODS

    out = {k: v for k, v in mcfg.items() if not (k in NEUTRAL and v == NEUTRAL[k])}
    if issubclass(METHODS.get(name), PathMethod) and out.get("baseline") != "expected":
        out.pop("n_samples", None)
        out.pop("seed", None)
    return out


def modifier_config(cfg: dict[str, Any], group: str) -> dict[str, Any] | None:
    """``cfg.noise`` / ``cfg.post`` (configs/noise/, configs/post/): the wrapping modifier's options, or None."""
    value = cfg.get(group)
    if not value:
        return None
    if not isinstance(value, dict) or not value.get("kind"):
        raise ValueError(f"invalid {group}={value!r}: choose one with {group}=<name> (see configs/{group}/)")
    return dict(value)


def innermost(method):
    """The method a modifier chain wraps (NoiseTunnel and XRAI keep theirs as ``.method``)."""
    while hasattr(method, "method"):
        method = method.method
    return method


def _stand_in_vae():
    """A VAE adapter that is never run: lets :func:`plan` build a latent method to check its values."""
    from attribution.vae import VAEAdapter

    stub = VAEAdapter.__new__(VAEAdapter)
    stub.with_normalization = lambda mean=None, std=None: stub
    stub.name = "stand-in"
    return stub


def _check_kwargs(registry, name, kwargs):
    registry.check_options(name, kwargs)


def build(setup: Setup) -> Setup:
    """Load the dataset (see :mod:`.manifests` for which manifest it reuses), classifier, VAE, method and metrics;
    nothing is written into ``out_dir`` before all of them loaded."""
    import attribution
    from attribution.metrics import METRICS
    from attribution.metrics.localisation import check_masks_available

    cfg = setup.cfg
    seed_everything(int(cfg.get("seed") or 0))
    # the subset: a manifest named by the user, or the one made from exactly this selection (benchmarks.run.manifests)
    dcfg, manifest = manifests.choose(setup.out_dir, cfg["dataset"])
    setup.dataset = _build("dataset", resolve_embedded(dcfg))
    manifests.check_consistent(setup.out_dir, cfg["dataset"], list(setup.dataset.ids), manifest)
    check_masks_available(setup.dataset, setup.metric_cfgs)  # localisation metrics: a dataset with masks
    setup.classifier = _build("model", resolve_embedded(cfg["model"]))
    n_ds, n_clf = getattr(setup.dataset, "num_classes", None), getattr(setup.classifier, "num_classes", None)
    if n_ds and n_clf and n_ds != n_clf:
        raise ValueError(f"model={setup.classifier.name} has {n_clf} outputs but dataset={setup.dataset.name} has "
                         f"{n_ds} classes: give a fine-tuned checkpoint (model.checkpoint=...)")
    setup.classifier.model.to(setup.device).eval()
    model_takes_images(setup.dataset, setup.classifier, setup.device)  # before any other work
    mean, std = tuple(setup.classifier.mean), tuple(setup.classifier.std)
    extra = {"mean": mean, "std": std}
    if setup.needs_vae:
        setup.vae = _build("vae", resolve_embedded(cfg["vae"]))
        if hasattr(setup.vae, "to"):
            setup.vae = setup.vae.to(setup.device) or setup.vae
        extra["vae"] = setup.vae
    setup.method = attribution.build_method(setup.base_method or setup.method_name, **setup.method_cfg, **extra,
                                            noise=setup.noise, post=setup.post)
    if setup.needs_bank:  # IG2, Expected Gradients: the first images of the evaluation set
        innermost(setup.method).set_references(reference_bank(setup, int(cfg.get("reference_bank") or 100)))
    for col, spec in setup.metric_cfgs.items():
        factory, opts = METRICS.get(spec["metric"]), spec["options"]
        kw = {k: v for k, v in (("mean", mean), ("std", std)) if _takes(factory, k) and k not in opts}
        setup.metrics[col] = attribution.build_metric(spec["metric"], **opts, **kw)
    manifests.write(manifest, setup.dataset, cfg["dataset"])  # the first file of the run: every check passed
    return setup


def reference_bank(setup: Setup, n: int) -> torch.Tensor:
    """The first ``n`` readable images of the manifest, normalised for the classifier, on the run's device."""
    from attribution.engine import Normalizer

    images = []
    for k in range(len(setup.dataset.ids)):
        if len(images) == n:
            break
        s = setup.dataset[k]
        if s.image is not None:
            images.append(s.image.float())
    if not images:
        raise ValueError(f"dataset {setup.dataset.name!r} has no readable image for the reference bank")
    norm = Normalizer(setup.classifier.mean, setup.classifier.std)
    return norm.normalize(torch.stack(images).to(setup.device))


class PreflightError(RuntimeError):
    """Data, weights or a VAE that a run needs cannot be loaded; the message lists each one and how to provide it."""


def preflight(cfgs: Sequence[dict[str, Any]]) -> None:
    """Load every distinct dataset, classifier and (where a method needs one) VAE of ``cfgs`` once.

    Raises :class:`PreflightError` listing every problem (missing data folder, no hub access, a checkpoint that is
    not there, a classifier whose class count does not match its dataset), so a grid stops before any job starts.
    """
    import attribution

    problems: list[str] = []
    built: dict[tuple[str, str], Any] = {}

    def load(kind: str, c: dict[str, Any]):
        key = (kind, provenance.config_hash(c))
        if key not in built:
            try:
                built[key] = _build(kind, resolve_embedded(c))
            except Exception as e:  # noqa: BLE001 - every failure is reported, together
                built[key] = None
                problems.append(f"{kind}={c.get('name', '?')}: {type(e).__name__}: {e}")
        return built[key]

    for dev in dict.fromkeys(str(cfg.get("device", "auto")) for cfg in cfgs):
        try:
            select_device(dev)
        except ValueError as e:
            problems.append(str(e))
    for cfg in cfgs:
        ds = load("dataset", cfg["dataset"])
        clf = load("model", cfg["model"])
        name = (cfg.get("method") or {}).get("name")
        if name and attribution.method_info(name).needs_vae and cfg.get("vae"):
            load("vae", cfg["vae"])
        if ds is not None and clf is not None:
            n_ds, n_clf = getattr(ds, "num_classes", None), getattr(clf, "num_classes", None)
            if n_ds and n_clf and n_ds != n_clf:
                msg = (f"model={cfg['model'].get('name')} has {n_clf} outputs but dataset={cfg['dataset'].get('name')}"
                       f" has {n_ds} classes: give a fine-tuned checkpoint (model.checkpoint=...; see "
                       f"scripts/finetune_head.py)")
                if msg not in problems:
                    problems.append(msg)
            try:
                model_takes_images(ds, clf)
            except ConfigError as e:
                if str(e) not in problems:
                    problems.append(str(e))
    if problems:
        hint = "Set any value on the command line: dataset.source=..., model.checkpoint=..., vae.source=..., device=..."
        if any("checkpoint_dir" in c for c in cfgs) and any("checkpoint" in p for p in problems):
            hint += ("\nFine-tuned heads are looked up under checkpoint_dir (now "
                     f"{next(c['checkpoint_dir'] for c in cfgs if 'checkpoint_dir' in c)!r}; set checkpoint_dir=... "
                     "or ATTRIBUTION_CHECKPOINTS=...): <checkpoint_dir>/classifier_<dataset>/<model>_best.pt")
        raise PreflightError(f"cannot start: {len(problems)} problem(s)\n  - " + "\n  - ".join(problems) + "\n" + hint)


def _plugin_configs() -> None:
    """Methods of installed packages (entry points) get a ``method=<name>`` config (:mod:`.plugins`)."""
    from .plugins import register_plugin_configs

    register_plugin_configs()


_plugin_configs()
