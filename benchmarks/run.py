"""The benchmark runner: ``python -m benchmarks.run dataset=... model=... method=... metrics=...``.

A thin Hydra app over the library (docs/design.md "Data flows one way"):
config -> dataset (manifest of ids) -> batches -> classifier -> targets -> method -> attributions (cached)
-> metrics (per image) -> results store (one file per shard) -> tables/report.

- Every name and value is checked before any work: Hydra lists the choices of a config group; the method and
  the metrics are built (and so validated) before the dataset and the classifier are loaded.
- ``shard=i/n`` evaluates the i-th of n contiguous slices of the dataset's ids.
- Resumable: rows already in the store for (dataset, model, method, method_hash, image id) are skipped; rows that
  lack a metric now configured are re-scored from the attribution cache without recomputing the attribution.
  Rows are written per batch, atomically (see :mod:`benchmarks.store`), so a kill loses at most the batch in
  flight and never duplicates a row.
- ``experiment=demo`` / ``experiment=table1`` select the two reference grids (``-m`` runs the grid).

Examples::

    python -m benchmarks.run dataset=mnist model=mnist_cnn method=guided_ig metrics=default
    python -m benchmarks.run -m experiment=table1 hydra/launcher=submitit_slurm shard=0/4,1/4,2/4,3/4
"""
from __future__ import annotations

import inspect
import json
import logging
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import provenance
from .cache import AttributionCache, roundtrip
from .grids import save_samples, write_attribution_grids
from .store import ShardWriter, atomic_write_text, load_store, remove_stale_temps, run_stem, store_dir

log = logging.getLogger("benchmarks.run")

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "configs")
TARGETS = ("label", "pred")


# ----------------------------------------------------------------------------------------------- config helpers
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
        from .embedded import resolve_source

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

    ``method_settings`` (set by experiments, e.g. the demo's reduced step counts) maps ``"*"`` to values applied to
    the keys a method already has, and a method name to values applied to that method. A key given on the command
    line as ``method.<key>=...`` (listed in ``overridden``) keeps the command line's value.
    """
    mcfg = dict(cfg["method"])
    name = mcfg.get("name")
    settings = cfg.get("method_settings") or {}
    keep = set(overridden)
    for key, value in (settings.get("*") or {}).items():
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


def _cli_method_keys(overrides: Sequence[str]) -> list[str]:
    keys = []
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if key.startswith("method."):
            keys.append(key.split(".", 1)[1])
    return keys


def _takes(factory, name: str) -> bool:
    target = factory.__init__ if inspect.isclass(factory) else factory
    params = inspect.signature(target).parameters
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


# ------------------------------------------------------------------------------------------------- components
@dataclass
class Setup:
    """Everything one run needs, built and validated from the resolved config."""

    cfg: dict[str, Any]
    device: torch.device
    shard: tuple[int, int]
    method_name: str
    method_cfg: dict[str, Any]
    method_hash: str
    setup_hash: str
    config_hash: str
    metric_cfgs: dict[str, dict[str, Any]]
    metric_hashes: dict[str, str]
    out_dir: Path
    needs_vae: bool = False
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
    name = mcfg.pop("name", None)
    if name is None:
        raise ValueError("the method config has no 'name' key")
    factory = METHODS.get(name)  # unknown name -> KeyError listing the registered methods
    if mcfg.get("autocast"):
        log.warning("method.autocast=%s: reduced precision changes the maps (measured on real weights, "
                    "results/precision/: IG 18-51%%, Guided IG and MA-GIG take other paths); keep the float32 "
                    "default for numbers you publish", mcfg["autocast"])
    needs_vae = bool(getattr(factory, "needs_vae", False))
    if needs_vae and not cfg.get("vae"):
        vaes = sorted(p.stem for p in Path(CONFIG_DIR, "vae").glob("*.yaml"))
        raise ValueError(f"method {name!r} works in a VAE's latent space: choose one with vae=<name>, one of "
                         f"{vaes} (configs/vae/)")
    if needs_vae:  # names, then values against a stand-in VAE: the real one is loaded by build()
        _check_kwargs(METHODS, name, mcfg)
        attribution.build_method(name, **mcfg, vae=_stand_in_vae())
    else:  # building validates every value (raises ConfigError naming the key)
        attribution.build_method(name, **mcfg)

    mets = metrics_config(cfg)
    if not mets:
        raise ValueError("no metrics configured: choose a set with metrics=<name> (see configs/metrics/)")
    for spec in mets.values():  # unknown name/option/value -> error naming the choices
        attribution.build_metric(spec["metric"], **spec["options"])

    vae_cfg = cfg.get("vae") if needs_vae else None
    # what the attribution depends on beyond the method's own keys: its VAE, and IG2's reference bank size
    bank = int(cfg.get("reference_bank") or 100) if hasattr(factory, "set_references") else None
    method_hash = provenance.config_hash({"name": name, **mcfg, "vae": vae_cfg, **({"reference_bank": bank}
                                                                                  if bank else {})})
    setup_hash = provenance.config_hash({"dataset": cfg["dataset"], "model": cfg["model"], "target": target,
                                         "seed": cfg.get("seed"), "max_images": max_images})
    out_dir = Path(str(cfg.get("out_dir") or "results/adhoc")).expanduser()
    return Setup(cfg=cfg, device=device, shard=shard, method_name=name, method_cfg=mcfg, method_hash=method_hash,
                 setup_hash=setup_hash, config_hash=provenance.config_hash(provenance.strip_keys(cfg)),
                 metric_cfgs=mets, metric_hashes={m: provenance.config_hash(spec) for m, spec in mets.items()},
                 out_dir=out_dir, needs_vae=needs_vae)


def _stand_in_vae():
    """A VAE adapter that is never run: lets :func:`plan` build a latent method to check its values."""
    from attribution.vae import VAEAdapter

    stub = VAEAdapter.__new__(VAEAdapter)
    stub.with_normalization = lambda mean=None, std=None: stub
    stub.name = "stand-in"
    return stub


def _check_kwargs(registry, name, kwargs):
    from attribution.registry import _check_kwargs as check

    check(registry.kind, name, registry.get(name), kwargs)


def build(setup: Setup) -> Setup:
    """Load the dataset (reusing ``<out_dir>/manifest_<dataset>.json``), classifier, VAE, method and metrics."""
    import attribution
    from attribution.metrics import METRICS

    cfg = setup.cfg
    seed_everything(int(cfg.get("seed") or 0))
    setup.out_dir.mkdir(parents=True, exist_ok=True)
    dcfg = resolve_embedded(cfg["dataset"])
    ds_name = str(dcfg.get("name", "dataset"))
    manifest = setup.out_dir / f"manifest_{ds_name}.json"
    if dcfg.get("manifest") is None and manifest.exists():  # a dataset.manifest given by the user wins
        dcfg["manifest"] = str(manifest)
    setup.dataset = _build("dataset", dcfg)
    if not manifest.exists():
        atomic_write_text(manifest, json.dumps(setup.dataset.manifest(), indent=1))
    setup.classifier = _build("model", resolve_embedded(cfg["model"]))
    n_ds, n_clf = getattr(setup.dataset, "num_classes", None), getattr(setup.classifier, "num_classes", None)
    if n_ds and n_clf and n_ds != n_clf:
        raise ValueError(f"model={setup.classifier.name} has {n_clf} outputs but dataset={setup.dataset.name} has "
                         f"{n_ds} classes: give a fine-tuned checkpoint (model.checkpoint=...)")
    setup.classifier.model.to(setup.device).eval()
    mean, std = tuple(setup.classifier.mean), tuple(setup.classifier.std)
    extra = {"mean": mean, "std": std}
    if setup.needs_vae:
        setup.vae = _build("vae", resolve_embedded(cfg["vae"]))
        if hasattr(setup.vae, "to"):
            setup.vae = setup.vae.to(setup.device) or setup.vae
        extra["vae"] = setup.vae
    setup.method = attribution.build_method(setup.method_name, **setup.method_cfg, **extra)
    if hasattr(setup.method, "set_references"):  # IG2: the first images of the evaluation set (upstream: 100)
        setup.method.set_references(reference_bank(setup, int(cfg.get("reference_bank") or 100)))
    for col, spec in setup.metric_cfgs.items():
        factory, opts = METRICS.get(spec["metric"]), spec["options"]
        kw = {k: v for k, v in (("mean", mean), ("std", std)) if _takes(factory, k) and k not in opts}
        setup.metrics[col] = attribution.build_metric(spec["metric"], **opts, **kw)
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


# ------------------------------------------------------------------------------------------------ evaluation
def _to_py(v: torch.Tensor, i: int):
    x = v[i]
    if x.dim() == 0:
        return float(x)
    return [float(t) for t in x.reshape(-1).tolist()]


def _base_row(setup: Setup, sample, versions_json: str, device_str: str, commit: str) -> dict[str, Any]:
    return {
        "dataset": setup.dataset.name, "model": setup.classifier.name, "method": setup.method_name,
        "method_hash": setup.method_hash, "config_hash": setup.config_hash, "setup_hash": setup.setup_hash,
        "image_id": str(sample.id), "label": int(sample.label), "target": -1, "pred": -1, "status": "ok",
        "note": sample.note, "completeness_error": float("nan"), "seconds": float("nan"),
        "passes_fb": float("nan"), "passes_f": float("nan"), "metrics": "{}", "device": device_str,
        "versions": versions_json, "git_commit": commit, "seed": int(setup.cfg.get("seed") or 0),
        "shard": f"{setup.shard[0]}/{setup.shard[1]}",
    }


@dataclass
class RunResult:
    out_dir: Path
    stem: str
    evaluated: int
    skipped_done: int
    rescored: int
    seconds: float


def _todo(setup: Setup, ids: list[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Ids still to do, and for rows that exist but lack a configured metric, the existing row to extend."""
    stem = run_stem(setup.dataset.name, setup.classifier.name, setup.method_name, setup.method_hash)
    df = load_store(setup.out_dir, prefix=stem + "__")
    existing: dict[str, dict[str, Any]] = {}
    if len(df):
        stale = df["setup_hash"] != setup.setup_hash if "setup_hash" in df.columns else None
        if stale is not None and stale.any():
            log.warning("%d stored rows of %s were made with another dataset/model/target/seed config; "
                        "they are recomputed", int(stale.sum()), stem)
            df = df[~stale]
        existing = {r["image_id"]: r for r in df.to_dict("records")}
    todo, partial = [], {}
    for i in ids:
        row = existing.get(i)
        if row is None:
            todo.append(i)
            continue
        scored = json.loads(row.get("metrics") or "{}")
        missing = [m for m, h in setup.metric_hashes.items() if scored.get(m) != h]
        if missing and row.get("status") == "ok":
            todo.append(i)
            partial[i] = row
    return todo, partial


def evaluate(setup: Setup, logger=None) -> RunResult:
    """Run the (built) setup over this shard's images, writing rows to the store. Returns counts."""
    from tqdm.auto import tqdm

    from attribution import PassCounter
    from attribution.engine import Normalizer

    cfg = setup.cfg
    ds, clf, method = setup.dataset, setup.classifier, setup.method
    model = clf.model
    norm = Normalizer(clf.mean, clf.std)
    device = setup.device
    ids = list(ds.ids)
    if cfg.get("max_images"):
        ids = ids[: int(cfg["max_images"])]
    index_of = {i: k for k, i in enumerate(ds.ids)}
    mine = [ids[k] for k in shard_slice(len(ids), setup.shard)]
    todo, partial = _todo(setup, mine)
    stem = run_stem(ds.name, clf.name, setup.method_name, setup.method_hash)
    writer = ShardWriter(setup.out_dir, stem, setup.shard)
    writer.close()  # fold parts left by a killed run of this shard
    cache_cfg = cfg.get("cache") or {}
    cache = AttributionCache(setup.out_dir, ds.name, clf.name, setup.method_name,
                             f"{setup.method_hash}-{setup.setup_hash}", dtype=cache_cfg.get("dtype", "float16"),
                             enabled=bool(cache_cfg.get("enabled", True)))
    stale = remove_stale_temps(store_dir(setup.out_dir)) + remove_stale_temps(cache.dir)
    if stale:
        log.info("removed %d temporary files left by killed runs", stale)
    versions_json = json.dumps(provenance.versions(), sort_keys=True)
    commit = provenance.git_commit()
    device_str = provenance.device_name(device)
    target_mode = cfg.get("target", "label")
    bs = int(cfg["batch_size"])
    t_start = time.perf_counter()
    log.info("%s shard %d/%d: %d images, %d to do (%d re-scored), out_dir=%s", stem, *setup.shard, len(mine),
             len(todo), len(partial), setup.out_dir)
    bar = tqdm(total=len(todo), unit="img", desc=f"{ds.name}/{clf.name}/{setup.method_name}",
               disable=not cfg.get("progress", True), dynamic_ncols=True, smoothing=0.1)
    n_done = 0
    try:
        for start in range(0, len(todo), bs):
            batch_ids = todo[start:start + bs]
            rows = _run_batch(setup, batch_ids, index_of, partial, cache, norm, model, method, device,
                              target_mode, versions_json, device_str, commit, PassCounter)
            writer.write(rows)
            if logger is not None:
                logger.log_rows(rows)
            n_done += len(batch_ids)
            bar.update(len(batch_ids))
    finally:
        bar.close()
    writer.close()
    return RunResult(setup.out_dir, stem, n_done, len(mine) - len(todo), len(partial),
                     time.perf_counter() - t_start)


def _run_batch(setup, batch_ids, index_of, partial, cache, norm, model, method, device, target_mode,
               versions_json, device_str, commit, PassCounter) -> list[dict[str, Any]]:
    ds = setup.dataset
    samples = [ds[index_of[i]] for i in batch_ids]
    rows = []
    good = []  # (row, sample) of readable images
    for s in samples:
        if str(s.id) in partial:
            row = dict(partial[str(s.id)])
            row.update({"config_hash": setup.config_hash, "shard": f"{setup.shard[0]}/{setup.shard[1]}"})
        else:
            row = _base_row(setup, s, versions_json, device_str, commit)
        rows.append(row)
        if s.image is None:
            row["status"] = "skipped"
            row["note"] = s.note or "unreadable image"
            continue
        good.append((row, s))
    if not good:
        return rows
    pixels = torch.stack([s.image.float() for _, s in good])
    save_samples(setup.out_dir, ds.name, setup.classifier.name, [s.id for _, s in good], pixels)
    x = norm.normalize(pixels.to(device))
    labels = torch.tensor([int(s.label) for _, s in good], device=device)
    with torch.no_grad():
        logits = model(x)
    finite = torch.isfinite(logits).all(1)
    pred = logits.argmax(1)
    target = labels if target_mode == "label" else pred
    for k, (row, _) in enumerate(good):
        row["pred"], row["target"] = int(pred[k]), int(target[k])
        if not bool(finite[k]):
            row["status"], row["note"] = "bad_model_output", "the classifier returned NaN/Inf logits"
    keep = [k for k in range(len(good)) if good[k][0]["status"] == "ok"]
    if not keep:
        return rows
    # attributions: from the cache, or computed for the images that miss it
    attrs: dict[int, torch.Tensor] = {}
    miss = []
    for k in keep:
        rec = cache.get(str(good[k][1].id))
        if rec is None:
            miss.append(k)
            continue
        attrs[k] = rec["attr"].to(device)
        good[k][0].update({key: rec[key] for key in ("seconds", "passes_fb", "passes_f")})
        good[k][0]["completeness_error"] = rec["completeness"]
    if miss:
        idx = torch.tensor(miss, device=device)
        xm, tm = x[idx], target[idx]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        with PassCounter(model) as pc:
            out = method.attribute(model, xm, tm)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        per_image = (time.perf_counter() - t0) / len(miss)
        attr = roundtrip(out.attr.detach(), cache.dtype)
        comp = out.completeness
        for j, k in enumerate(miss):
            c = float(comp[j]) if comp is not None else float("nan")
            rec = {"seconds": per_image, "passes_fb": pc.fb / len(miss), "passes_f": pc.f / len(miss)}
            good[k][0].update(rec)
            good[k][0]["completeness_error"] = c
            attrs[k] = attr[j]
            cache.put(str(good[k][1].id), out.attr[j], completeness=c, **rec)
    # statuses from the attributions
    score = []
    for k in keep:
        a = attrs[k]
        if not bool(torch.isfinite(a).all()):
            good[k][0]["status"], good[k][0]["note"] = "bad_model_output", "the attribution has NaN/Inf values"
        elif not bool((a != 0).any()):
            good[k][0]["status"], good[k][0]["note"] = "zero_attribution", "the attribution is zero everywhere"
        else:
            score.append(k)
    if score:
        idx = torch.tensor(score, device=device)
        xs, ts = x[idx], target[idx]
        a = torch.stack([attrs[k] for k in score]).to(device)
        for mname, metric in setup.metrics.items():
            need = [j for j, k in enumerate(score)
                    if json.loads(good[k][0].get("metrics") or "{}").get(mname) != setup.metric_hashes[mname]]
            if not need:
                continue
            sel = torch.tensor(need, device=device)
            try:
                vals = metric(model, xs[sel], a[sel], ts[sel])
            except MemoryError as err:  # name the metric and its command-line key
                raise MemoryError(f"metric {mname!r}: {err}; set it with ++metrics.{mname}.max_batch=N") from err
            for key, v in vals.items():
                v = torch.as_tensor(v).detach().float().cpu()
                for jj, j in enumerate(need):
                    good[score[j]][0][f"{mname}.{key}"] = _to_py(v, jj)
            for j in need:
                row = good[score[j]][0]
                scored = json.loads(row.get("metrics") or "{}")
                scored[mname] = setup.metric_hashes[mname]
                row["metrics"] = json.dumps(scored, sort_keys=True)
                if getattr(metric, "nan_means_bad_output", False) and row["status"] == "ok" and any(
                        isinstance(row.get(f"{mname}.{key}"), float) and math.isnan(row[f"{mname}.{key}"])
                        for key in vals):
                    row["status"] = "bad_model_output"
                    row["note"] = (f"the classifier returned NaN/Inf logits on inputs that metric {mname!r} "
                                   f"evaluates (perturbed images or the baseline)")
    return rows


# ---------------------------------------------------------------------------------------------- orchestration
def finalize(out_dir) -> list[str]:
    """Write the tables and the report of ``out_dir`` (if those modules exist). Returns what was written."""
    written = []
    grids = write_attribution_grids(out_dir)  # before the report, which embeds every PNG in figures/
    if grids:
        written.append(f"benchmarks.grids.write_attribution_grids: {[str(g) for g in grids]}")
    for module, func in (("benchmarks.table", "write_tables"), ("benchmarks.report", "write_report")):
        try:
            mod = __import__(module, fromlist=[func])
        except ModuleNotFoundError as e:
            if e.name == module:
                continue
            raise
        fn = getattr(mod, func, None)
        if fn is not None:
            res = fn(out_dir)
            written.append(f"{module}.{func}: {res}" if res is not None else f"{module}.{func}")
    return written


def make_logger(cfg: dict[str, Any], setup: Setup):
    lcfg = dict(cfg.get("logger") or {})
    kind = lcfg.pop("name", "none")
    if kind in (None, "none"):
        return None
    if kind == "wandb":
        from .wandb_log import WandbLogger

        return WandbLogger(config=cfg, out_dir=str(setup.out_dir),
                           name=f"{setup.dataset.name}/{setup.classifier.name}/{setup.method_name}", **lcfg)
    raise ValueError(f"invalid logger={kind!r}: choose none or wandb")


def run(cfg, overrides: Sequence[str] = (), finalize_outputs: bool = True, preflight_single: bool = True
        ) -> RunResult:
    """Run one (dataset, model, method, shard) job from a resolved config (a dict or an OmegaConf config)."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    cfg = {k: v for k, v in cfg.items() if k != "hydra"}
    setup = plan(cfg, overrides)
    if cfg.get("preflight") and preflight_single:
        preflight([cfg])
    build(setup)
    logger = make_logger(cfg, setup)
    try:
        result = evaluate(setup, logger)
        if logger is not None:
            logger.finish(load_store(setup.out_dir, prefix=result.stem + "__"))
    except BaseException:
        if logger is not None and hasattr(logger, "abort"):
            logger.abort()
        raise
    rate = result.evaluated / result.seconds if result.seconds > 0 else math.nan
    log.info("%s: %d evaluated (%.2f img/s), %d already done, %d re-scored", result.stem, result.evaluated, rate,
             result.skipped_done, result.rescored)
    if finalize_outputs and cfg.get("write_tables", True):
        for line in finalize(setup.out_dir):
            log.info("wrote %s", line)
    return result


def _absolute_out_dir(cfg) -> None:
    """Resolve a relative ``out_dir`` against the directory the command was started in (jobs may run elsewhere)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    out = Path(str(cfg.out_dir)).expanduser()
    if not out.is_absolute():
        try:
            base = Path(HydraConfig.get().runtime.cwd)
        except ValueError:
            base = Path.cwd()
        with open_dict(cfg):
            cfg.out_dir = str(base / out)


class PreflightError(RuntimeError):
    """Data, weights or a VAE that a run needs cannot be loaded; the message lists each one and how to provide it."""


def preflight(cfgs: Sequence[dict[str, Any]]) -> None:
    """Load every distinct dataset, classifier and (where a method needs one) VAE of ``cfgs`` once.

    Raises :class:`PreflightError` listing every problem (missing data folder, no hub access, a checkpoint that is
    not there, a classifier whose class count does not match its dataset), so a grid stops before any job starts.
    """
    from attribution.methods import METHODS

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
        if name and getattr(METHODS.get(name), "needs_vae", False) and cfg.get("vae"):
            load("vae", cfg["vae"])
        if ds is not None and clf is not None:
            n_ds, n_clf = getattr(ds, "num_classes", None), getattr(clf, "num_classes", None)
            if n_ds and n_clf and n_ds != n_clf:
                msg = (f"model={cfg['model'].get('name')} has {n_clf} outputs but dataset={cfg['dataset'].get('name')}"
                       f" has {n_ds} classes: give a fine-tuned checkpoint (model.checkpoint=...; see "
                       f"scripts/finetune_head.py)")
                if msg not in problems:
                    problems.append(msg)
    if problems:
        hint = "Set any value on the command line: dataset.source=..., model.checkpoint=..., vae.source=..., device=..."
        if any("checkpoint_dir" in c for c in cfgs) and any("checkpoint" in p for p in problems):
            hint += ("\nFine-tuned heads are looked up under checkpoint_dir (now "
                     f"{next(c['checkpoint_dir'] for c in cfgs if 'checkpoint_dir' in c)!r}; set checkpoint_dir=... "
                     "or ATTRIBUTION_CHECKPOINTS=...): <checkpoint_dir>/classifier_<dataset>/<model>_best.pt")
        raise PreflightError(f"cannot start: {len(problems)} problem(s)\n  - " + "\n  - ".join(problems) + "\n" + hint)


def sweep_configs(config) -> list[dict[str, Any]]:
    """The resolved job configs of a multirun, one per (dataset, model, method) of the sweep (shards collapsed)."""
    import itertools

    from hydra import compose
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    parser = OverridesParser.create()
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    given = [f"{k}={v}" for k, v in params.items()] + list(OmegaConf.select(config, "hydra.overrides.task") or [])
    # the config search path given on the command line (hydra.searchpath=[...]) shapes the composition too
    search = [o for o in OmegaConf.select(config, "hydra.overrides.hydra") or [] if o.startswith("hydra.searchpath")]
    fixed, axes = [], {}
    for o in parser.parse_overrides(given):
        key = o.key_or_group
        if o.is_sweep_override():
            axes[key] = [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
        else:
            axes.pop(key, None)
            fixed = [f for f in fixed if parser.parse_override(f).key_or_group != key] + [o.input_line]
    axes = {k: v for k, v in axes.items() if k in ("dataset", "model", "method", "vae")}
    out = []
    for combo in itertools.product(*axes.values()):
        cfg = compose(config_name="config", overrides=[*search, *fixed, *combo])
        out.append(OmegaConf.to_container(cfg, resolve=True))
    return out


try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover
    Callback = object


class SweepCallback(Callback):
    """Hydra callback (configs/config.yaml): ``preflight`` before a multirun starts its jobs, and the tables and
    report of ``out_dir`` once they all ended."""

    def on_multirun_start(self, config, **kwargs) -> None:
        if config.get("preflight", False):
            try:
                cfgs = sweep_configs(config)
                log.info("preflight: checking the device, data, classifiers and VAE of %d jobs", len(cfgs))
                preflight(cfgs)
            except Exception as e:  # noqa: BLE001
                # Hydra turns a callback's exception into a warning and goes on: stop the sweep here instead
                raise SystemExit(f"{e}\nNothing was run.") from None

    def on_multirun_end(self, config, **kwargs) -> None:
        if not config.get("write_tables", True):
            return
        from omegaconf import OmegaConf

        out = OmegaConf.select(config, "out_dir")
        if out is None:
            return
        out = Path(str(out)).expanduser()
        if not out.is_absolute():
            out = Path(OmegaConf.select(config, "hydra.runtime.cwd") or os.getcwd()) / out
        if (out / "store").is_dir():
            for line in finalize(out):
                log.info("wrote %s", line)


def _main(cfg) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    _absolute_out_dir(cfg)
    multirun = hc.mode == RunMode.MULTIRUN
    # under -m the callback already checked the whole grid and writes the tables once every job ended
    run(cfg, overrides=list(hc.overrides.task), finalize_outputs=not multirun, preflight_single=not multirun)


def main() -> None:
    import hydra

    hydra.main(config_path=CONFIG_DIR, config_name="config", version_base=None)(_main)()


if __name__ == "__main__":
    main()
