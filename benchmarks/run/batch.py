"""The per-batch loop: one shard of a built run, batch by batch, into the results store.

- Resumable: rows already in the store for (dataset, model, method, method_hash, image id) are skipped; rows that
  lack a metric now configured are re-scored from the attribution cache without recomputing the attribution.
  Rows are written per batch, atomically (see :mod:`benchmarks.io.store`), so a kill loses at most the batch in
  flight and never duplicates a row.
- A batch goes through small steps sharing one :class:`RunContext` (what every batch of the run shares) and one
  :class:`Batch` (that batch's rows and tensors): rows -> classify -> attributions -> check -> score.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..io import provenance
from ..io.cache import AttributionCache, roundtrip
from ..io.store import ShardWriter, load_store, remove_stale_temps, run_stem, store_dir
from ..report.grids import save_samples
from .config import shard_slice
from .planning import Setup

log = logging.getLogger("benchmarks.run")


@dataclass
class RunResult:
    out_dir: Path
    stem: str
    evaluated: int
    skipped_done: int
    rescored: int
    seconds: float


@dataclass
class RunContext:
    """What every batch of one run shares."""

    setup: Setup
    index_of: dict[str, int]            # image id -> index in the dataset
    partial: dict[str, dict[str, Any]]  # stored rows that lack a configured metric, by image id
    cache: AttributionCache
    norm: Any                           # attribution.engine.Normalizer of the classifier
    target_mode: str                    # "label" | "pred"
    versions_json: str
    device_str: str
    commit: str

    @property
    def model(self):
        return self.setup.classifier.model

    @property
    def device(self) -> torch.device:
        return self.setup.device


@dataclass
class Batch:
    """One batch on its way through the steps: its rows, and for the readable images their row and sample."""

    rows: list[dict[str, Any]]
    good: list[tuple[dict[str, Any], Any]]
    x: torch.Tensor | None = None              # the readable images, normalised, on the device
    target: torch.Tensor | None = None
    attrs: dict[int, torch.Tensor] = field(default_factory=dict)  # index into good -> attribution

    def ok(self) -> list[int]:
        """Indices into ``good`` whose row still has status ok."""
        return [k for k, (row, _) in enumerate(self.good) if row["status"] == "ok"]


def _to_py(v: torch.Tensor, i: int):
    x = v[i]
    if x.dim() == 0:
        return float(x)
    return [float(t) for t in x.reshape(-1).tolist()]


def _base_row(ctx: RunContext, sample) -> dict[str, Any]:
    setup = ctx.setup
    return {
        "dataset": setup.dataset.name, "model": setup.classifier.name, "method": setup.method_name,
        "method_hash": setup.method_hash, "config_hash": setup.config_hash, "setup_hash": setup.setup_hash,
        "image_id": str(sample.id), "label": int(sample.label), "target": -1, "pred": -1, "status": "ok",
        "note": sample.note, "completeness_error": float("nan"), "seconds": float("nan"),
        "passes_fb": float("nan"), "passes_f": float("nan"), "metrics": "{}", "device": ctx.device_str,
        "versions": ctx.versions_json, "git_commit": ctx.commit, "seed": int(setup.cfg.get("seed") or 0),
        "shard": f"{setup.shard[0]}/{setup.shard[1]}",
        # what the hashes stand for, so that a table can name the keys in which two configs of a method differ
        "method_config": json.dumps(setup.method_key, sort_keys=True, default=str),
        "metric_configs": "{}",
    }


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


def _cache(setup: Setup) -> AttributionCache:
    cache_cfg = setup.cfg.get("cache") or {}
    return AttributionCache(setup.out_dir, setup.dataset.name, setup.classifier.name, setup.method_name,
                            f"{setup.method_hash}-{setup.setup_hash}", dtype=cache_cfg.get("dtype", "float32"),
                            enabled=bool(cache_cfg.get("enabled", True)))


def attribution_maps(setup: Setup, ids: list[str], n: int = 8) -> list[tuple[str, Any]]:
    """(image id, [H,W,3] colour image in [0,1]) of |attribution| summed over channels, for the first ``n`` of
    ``ids`` whose attribution is cached (scaled to its 99th percentile, as the report's grids show them)."""
    import numpy as np
    from matplotlib import colormaps

    cache, out = _cache(setup), []
    for i in ids:
        if len(out) == n:
            break
        rec = cache.get(str(i))
        if rec is None:
            continue
        a = rec["attr"].float().abs()
        heat = (a.sum(0) if a.dim() == 3 else a).numpy()
        top = float(np.quantile(heat, 0.99)) or float(heat.max()) or 1.0
        out.append((str(i), colormaps["inferno"](np.clip(heat / top, 0, 1))[..., :3]))
    return out


def _context(setup: Setup, partial: dict[str, dict[str, Any]]) -> RunContext:
    """The shared state of the run's batches: cache (stale temporary files of killed runs removed), provenance."""
    from attribution.engine import Normalizer

    cfg, ds, clf = setup.cfg, setup.dataset, setup.classifier
    cache = _cache(setup)
    stale = remove_stale_temps(store_dir(setup.out_dir)) + remove_stale_temps(cache.dir)
    if stale:
        log.info("removed %d temporary files left by killed runs", stale)
    return RunContext(setup=setup, index_of={i: k for k, i in enumerate(ds.ids)}, partial=partial, cache=cache,
                      norm=Normalizer(clf.mean, clf.std), target_mode=cfg.get("target", "label"),
                      versions_json=json.dumps(provenance.versions(), sort_keys=True),
                      device_str=provenance.device_name(setup.device), commit=provenance.git_commit())


def evaluate(setup: Setup, logger=None) -> RunResult:
    """Run the (built) setup over this shard's images, writing rows to the store. Returns counts."""
    from .console import Progress, interrupted

    cfg, ds, clf = setup.cfg, setup.dataset, setup.classifier
    ids = list(ds.ids)
    if cfg.get("max_images"):
        ids = ids[: int(cfg["max_images"])]
    mine = [ids[k] for k in shard_slice(len(ids), setup.shard)]
    todo, partial = _todo(setup, mine)
    stem = run_stem(ds.name, clf.name, setup.method_name, setup.method_hash)
    writer = ShardWriter(setup.out_dir, stem, setup.shard)
    writer.close()  # fold parts left by a killed run of this shard
    ctx = _context(setup, partial)
    bs = int(cfg["batch_size"])
    t_start = time.perf_counter()
    log.info("%s shard %d/%d: %d images, %d to do (%d re-scored), out_dir=%s", stem, *setup.shard, len(mine),
             len(todo), len(partial), setup.out_dir)
    bar = Progress(len(todo), f"{ds.name}/{clf.name}/{setup.method_name}", enabled=bool(cfg.get("progress", True)))
    n_done = 0
    try:
        for start in range(0, len(todo), bs):
            batch_ids = todo[start:start + bs]
            rows = run_batch(ctx, batch_ids)
            writer.write(rows)
            if logger is not None:
                logger.log_rows(rows)
            n_done += len(batch_ids)
            bar.update(len(batch_ids))
    except KeyboardInterrupt:
        bar.close()
        interrupted(n_done, len(mine) - len(todo), setup.out_dir)
        raise
    finally:
        bar.close()
    writer.close()
    return RunResult(setup.out_dir, stem, n_done, len(mine) - len(todo), len(partial),
                     time.perf_counter() - t_start)


def run_batch(ctx: RunContext, batch_ids: list[str]) -> list[dict[str, Any]]:
    """The rows of one batch of image ids: each step marks the rows it rules out (status and note)."""
    b = _rows(ctx, batch_ids)
    if b.good and _classify(ctx, b) and _attributions(ctx, b):
        _score(ctx, b)
    return b.rows


def _rows(ctx: RunContext, batch_ids: list[str]) -> Batch:
    """A row per id (the stored row when it is re-scored); unreadable images are marked skipped."""
    setup = ctx.setup
    b = Batch(rows=[], good=[])
    for s in (setup.dataset[ctx.index_of[i]] for i in batch_ids):
        if str(s.id) in ctx.partial:
            row = dict(ctx.partial[str(s.id)])
            row.update({"config_hash": setup.config_hash, "shard": f"{setup.shard[0]}/{setup.shard[1]}"})
            if not isinstance(row.get("method_config"), str):  # a row stored before rows kept their config
                row["method_config"] = json.dumps(setup.method_key, sort_keys=True, default=str)
        else:
            row = _base_row(ctx, s)
        b.rows.append(row)
        if s.image is None:
            row["status"] = "skipped"
            row["note"] = s.note or "unreadable image"
            continue
        b.good.append((row, s))
    return b


def _classify(ctx: RunContext, b: Batch) -> bool:
    """Predictions and targets; rows whose logits are NaN/Inf are marked. False when no row is left."""
    setup, device = ctx.setup, ctx.device
    pixels = torch.stack([s.image.float() for _, s in b.good])
    save_samples(setup.out_dir, setup.dataset.name, setup.classifier.name, [s.id for _, s in b.good], pixels)
    b.x = ctx.norm.normalize(pixels.to(device))
    labels = torch.tensor([int(s.label) for _, s in b.good], device=device)
    with torch.no_grad():
        logits = ctx.model(b.x)
    finite = torch.isfinite(logits).all(1)
    pred = logits.argmax(1)
    b.target = labels if ctx.target_mode == "label" else pred
    for k, (row, _) in enumerate(b.good):
        row["pred"], row["target"] = int(pred[k]), int(b.target[k])
        if not bool(finite[k]):
            row["status"], row["note"] = "bad_model_output", "the classifier returned NaN/Inf logits"
    return bool(b.ok())


def _attributions(ctx: RunContext, b: Batch) -> bool:
    """Attributions from the cache, or computed (timed, passes counted, cached) for the images that miss it; then
    rows whose map is NaN/Inf or zero everywhere are marked. False when no row is left to score."""
    from attribution import PassCounter

    miss = []
    for k in b.ok():
        row, sample = b.good[k]
        rec = ctx.cache.get(str(sample.id))
        if rec is None:
            miss.append(k)
            continue
        b.attrs[k] = rec["attr"].to(ctx.device)
        row.update({key: rec[key] for key in ("seconds", "passes_fb", "passes_f")})
        row["completeness_error"] = rec["completeness"]
    if miss:
        device = ctx.device
        idx = torch.tensor(miss, device=device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        with PassCounter(ctx.model) as pc:
            out = ctx.setup.method.attribute(ctx.model, b.x[idx], b.target[idx])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        per_image = (time.perf_counter() - t0) / len(miss)
        attr = roundtrip(out.attr.detach(), ctx.cache.dtype)
        comp = out.completeness
        for j, k in enumerate(miss):
            c = float(comp[j]) if comp is not None else float("nan")
            rec = {"seconds": per_image, "passes_fb": pc.fb / len(miss), "passes_f": pc.f / len(miss)}
            b.good[k][0].update(rec)
            b.good[k][0]["completeness_error"] = c
            b.attrs[k] = attr[j]
            ctx.cache.put(str(b.good[k][1].id), out.attr[j], completeness=c, **rec)
    for k in b.ok():
        a, row = b.attrs[k], b.good[k][0]
        if not bool(torch.isfinite(a).all()):
            row["status"], row["note"] = "bad_model_output", "the attribution has NaN/Inf values"
        elif not bool((a != 0).any()):
            row["status"], row["note"] = "zero_attribution", "the attribution is zero everywhere"
    return bool(b.ok())


def _score(ctx: RunContext, b: Batch) -> None:
    """Every configured metric on the rows that lack its current hash; a metric whose NaN can only mean NaN/Inf
    logits on its perturbed inputs marks the row bad_model_output."""
    setup, device = ctx.setup, ctx.device
    score = b.ok()
    idx = torch.tensor(score, device=device)
    xs, ts = b.x[idx], b.target[idx]
    a = torch.stack([b.attrs[k] for k in score]).to(device)
    for mname, metric in setup.metrics.items():
        need = [j for j, k in enumerate(score)
                if json.loads(b.good[k][0].get("metrics") or "{}").get(mname) != setup.metric_hashes[mname]]
        if not need:
            continue
        sel = torch.tensor(need, device=device)
        try:
            by_method = {"method": setup.method} if getattr(metric, "needs_method", False) else {}
            if getattr(metric, "needs_ground_truth", False):  # localisation: the samples' object masks [B,1,H,W]
                by_method["mask"] = torch.stack([b.good[score[j]][1].mask for j in need]).to(device)
            vals = metric(ctx.model, xs[sel], a[sel], ts[sel], **by_method)
        except MemoryError as err:  # name the metric and its command-line key
            raise MemoryError(f"metric {mname!r}: {err}; set it with ++metrics.{mname}.max_batch=N") from err
        for key, v in vals.items():
            v = torch.as_tensor(v).detach().float().cpu()
            for jj, j in enumerate(need):
                b.good[score[j]][0][f"{mname}.{key}"] = _to_py(v, jj)
        for j in need:
            row = b.good[score[j]][0]
            scored = json.loads(row.get("metrics") or "{}")
            scored[mname] = setup.metric_hashes[mname]
            row["metrics"] = json.dumps(scored, sort_keys=True)
            specs = json.loads(row.get("metric_configs") or "{}")
            specs[mname] = setup.metric_cfgs[mname]
            row["metric_configs"] = json.dumps(specs, sort_keys=True, default=str)
            if getattr(metric, "nan_means_bad_output", False) and row["status"] == "ok" and any(
                    isinstance(row.get(f"{mname}.{key}"), float) and math.isnan(row[f"{mname}.{key}"])
                    for key in vals):
                row["status"] = "bad_model_output"
                row["note"] = (f"the classifier returned NaN/Inf logits on inputs that metric {mname!r} "
                               f"evaluates (perturbed images or the baseline)")
