"""Result tables in the papers' layout, with bootstrap intervals and paired comparisons.

``python -m benchmarks.table <out_dir> [--metric-set diffid ...] [--baseline ig | --new-method NAME]``
reads the results store of ``<out_dir>`` and writes into ``<out_dir>``:

- ``table.md``, ``table.tex``, ``table.csv``: one table per (dataset, metric set) as the MA-GIG / SIG papers lay
  them out -- rows = methods (paper order), columns = model x metric (e.g. R18 DiffID, R18 Ins, R18 Del, VGG16 ...);
  each cell the mean over images with status ok and its 95% percentile bootstrap interval; per column the best
  value bold and the second underlined (direction-aware: Del lower is better). Images whose status is not ok are
  counted (column "n ok / flagged" and a footnote) and excluded. The CSV is long: one row per cell with mean, lo,
  hi, n, rank.
- ``comparison.md``, ``comparison.csv``: paired per-image differences against a baseline method (default ``ig``)
  or of a new method against every other method, with bootstrap intervals, Wilcoxon signed-rank p-values and Holm
  correction across methods (see :mod:`benchmarks.report.stats`).
- ``published_comparison.md``, ``published_comparison.csv``: our means next to the published numbers of
  ``results/published/*.csv`` for the cells that match (see :mod:`benchmarks.report.published`).

A metric set is a list of ``(label, column, direction)``; :func:`metric_sets` holds the named ones (the registry's
metric columns). Any ``<metric>`` prefix of the store's ``<metric>.<key>`` columns also works as a set name (all its
scalar keys), and an explicit spec ``"SIC=pic.sic:max,AIC=pic.aic:max"`` gives full control.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import published as pub
from .names import (  # noqa: F401
    DATASET_ORDER,
    MODEL_DISPLAY,
    MODEL_ORDER,
    _variant_sort_key,
    dataset_order,
    display_method,
    display_model,
    method_order,
    model_order,
)
from .render import N_BOOT, Cell, Layout, comparison_markdown, render_html, render_latex, render_markdown  # noqa: F401
from .stats import accuracy, bootstrap_ci, image_sets, paired_comparisons

Metric = tuple[str, str, str]  # (label, column, direction "max" | "min")

#: the runner's own columns (not a metric's): tables of them, and where they join a metric's table
RUNNER_SETS: dict[str, list[Metric]] = {
    "cost": [("s/img", "seconds", "min"), ("fwd+bwd", "passes_fb", "min"), ("fwd", "passes_f", "min")],
}
RUNNER_COLUMNS: dict[str, list[Metric]] = {"completeness": [("CompErr", "completeness_error", "min")]}
#: the papers' tables first, in this order; other registered metrics follow alphabetically (Quantus ones apart)
FIRST_SETS = ("diffid", "insertion_deletion", "pic", "completeness")


@functools.lru_cache(maxsize=1)
def metric_sets() -> dict[str, list[Metric]]:
    """The named metric sets: one per registered metric with columns (:func:`attribution.metric_info`: label, key,
    direction), the runner's columns added where they belong, and ``cost`` last. Quantus metrics are the
    ``quantus`` prefix set instead."""
    import attribution

    names = [m for m in attribution.available_metrics() if not m.startswith("quantus")]
    names = [m for m in FIRST_SETS if m in names] + sorted(m for m in names if m not in FIRST_SETS)
    out: dict[str, list[Metric]] = {}
    for name in names:
        cols = [(c.label, f"{name}.{c.key}", c.direction) for c in attribution.metric_info(name).columns]
        if cols:
            out[name] = RUNNER_COLUMNS.get(name, []) + cols
    return {**out, **RUNNER_SETS}


def _registered_direction(metric: str, key: str) -> str | None:
    import attribution

    if metric not in attribution.available_metrics():
        return None
    return attribution.metric_info(metric).direction(key or metric)


#: key fragments meaning "lower is better" for metric sets built from a prefix
_LOWER_BETTER = ("deletion", "error", "seconds", "time", "passes", "morf", "infidelity", "sensitivity",
                 "lipschitz", "complexity", "continuity", "pixel_flipping", "selectivity", "road")

SEED = 0


# --------------------------------------------------------------------------------------------- loading
def load_results(out_dir) -> pd.DataFrame:
    """The store of ``out_dir``: ``benchmarks.io.store.load_store`` when available, else the Parquet shards."""
    try:
        from ..io.store import load_store
    except ImportError:
        load_store = None
    if load_store is not None:
        return load_store(out_dir)
    files = sorted(Path(out_dir, "store").glob("*.parquet"))
    if not files:
        return pd.DataFrame()
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    key = [c for c in ["dataset", "model", "method", "method_hash", "image_id"] if c in df.columns]
    return df.drop_duplicates(key, keep="last").reset_index(drop=True) if key else df


# --------------------------------------------------------------------------------------------- frames
def with_variants(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``variant``: the method name, or, when one (dataset, model) holds several configs of a method,
    ``method[key=value, ...]`` with the keys in which its configs differ (from the rows' ``method_config``), or
    ``method[hash7]`` for rows stored without their config."""
    df = df.copy()
    if "method_hash" not in df.columns:
        df["variant"] = df["method"].astype(str)
        return df
    n = df.groupby(["dataset", "model", "method"])["method_hash"].nunique()
    multi = set(n[n > 1].index.get_level_values("method"))
    labels = config_labels(df[df["method"].isin(multi)]) if multi else {}
    df["variant"] = [labels.get((str(m), str(h)), f"{m}[{str(h)[:7]}]") if m in multi else str(m)
                     for m, h in zip(df["method"], df["method_hash"])]
    return df


def config_labels(df: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(method, method_hash) -> ``method[key=value, ...]``: the keys in which the method's stored configs differ."""
    if "method_config" not in df.columns:
        return {}
    out = {}
    for method, g in df.groupby("method"):
        cfgs = {}
        for h, text in g.drop_duplicates("method_hash")[["method_hash", "method_config"]].itertuples(index=False):
            if isinstance(text, str):
                cfgs[str(h)] = _flat(json.loads(text))
        keys = sorted({k for c in cfgs.values() for k in c if len({json.dumps(d.get(k), default=str)
                                                                      for d in cfgs.values()}) > 1})
        for h, c in cfgs.items():
            shown = ", ".join(f"{k}={_short(c.get(k))}" for k in keys)
            out[(str(method), h)] = f"{method}[{shown or h[:7]}]"
    return out


def _flat(d: dict, prefix: str = "") -> dict:
    """Nested config -> {"a.b": value}."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _short(v) -> str:
    return "-" if v is None else json.dumps(v, default=str).strip('"')


# --------------------------------------------------------------------------------------------- metric sets
def _is_scalar_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def resolve_metric_set(name: str, df: pd.DataFrame) -> tuple[str, list[Metric]]:
    """``name`` -> (set name, metrics present in ``df``).

    ``name`` is a key of :data:`METRIC_SETS`, a metric prefix (``pic`` -> every scalar ``pic.*`` column, or
    ``quantus`` -> every scalar column starting with ``quantus``), or a spec ``"Label=column:max,column2"``.
    """
    cols = set(df.columns)
    sets = metric_sets()
    if name in sets:
        return name, [m for m in sets[name] if m[1] in cols]
    if "=" in name or "," in name or ":" in name:
        out = []
        for part in filter(None, (p.strip() for p in name.split(","))):
            label, _, rest = part.rpartition("=")
            column, _, direction = rest.partition(":")
            direction = direction or _guess_direction(column)
            if direction not in ("max", "min"):
                raise ValueError(f"direction of {column!r} must be max or min, got {direction!r}")
            if column in cols:
                out.append((label or column, column, direction))
        return "custom", out
    picked = [c for c in df.columns if (c.startswith(name + ".") or (name == "quantus" and c.startswith("quantus")))
              and not c.endswith(("_curve", "_skip", "." + UNCHANGED_KEY)) and _is_scalar_numeric(df[c])]
    out = []
    for c in picked:
        metric, _, key = c.partition(".")
        if name == "quantus":  # quantus_pixel_flipping.quantus_pixel_flipping -> pixel_flipping
            label = metric.removeprefix("quantus_") + ("" if key in ("", metric) else f".{key}")
        else:
            label = key or c
        out.append((label, c, _guess_direction(c)))
    return name, out


def _guess_direction(column: str) -> str:
    metric, _, key = column.partition(".")
    registered = _registered_direction(metric, key)
    if registered is not None:
        return registered
    return "min" if any(k in column.lower() for k in _LOWER_BETTER) else "max"


def available_metric_sets(df: pd.DataFrame) -> list[str]:
    """The named sets with at least one column in ``df`` (``cost`` last), plus ``quantus`` if present."""
    names = [n for n in metric_sets() if n != "cost" and resolve_metric_set(n, df)[1]]
    if any(c.startswith("quantus") for c in df.columns):
        names.append("quantus")
    if resolve_metric_set("cost", df)[1]:
        names.append("cost")
    return names


# --------------------------------------------------------------------------------------------- summary
def summarize(df: pd.DataFrame, metric_set="diffid", n_boot: int = N_BOOT, seed: int = SEED,
              alpha: float = 0.05) -> pd.DataFrame:
    """Long table: one row per (dataset, model, variant, metric) with mean, lo, hi, n and rank.

    Only rows with status ok enter the means; ``n`` counts the finite values among them, ``n_ok`` / ``n_flagged``
    the rows with status ok / not ok of that (dataset, model, variant). ``rank`` is 1 (best) or 2 (second) by
    the column's direction among the variants of that (dataset, model, metric), ties sharing a rank; 0 otherwise.
    """
    if isinstance(metric_set, str):
        set_name, metrics = resolve_metric_set(metric_set, df)
    else:
        set_name, metrics = "custom", list(metric_set)
    seen, unique = set(), []
    for m in metrics:  # a label twice (two spellings of one key): the first one present wins
        if m[0] not in seen:
            seen.add(m[0])
            unique.append(m)
    metrics = unique
    cols = ["dataset", "model", "method", "variant", "method_hash", "metric_set", "label", "column", "direction",
            "mean", "lo", "hi", "n", "n_ok", "n_flagged", "rank", "statistic", "flag"]
    if df is None or df.empty or not metrics:
        return pd.DataFrame(columns=cols)
    if "variant" not in df.columns:
        df = with_variants(df)
    status = df["status"] if "status" in df.columns else pd.Series("ok", index=df.index)
    rows = []
    for (dataset, model, variant), g in df.groupby(["dataset", "model", "variant"], sort=False):
        if "image_id" in g.columns:  # by key: the interval does not follow the store's row order (scheduling)
            g = g.sort_values("image_id", kind="stable", key=lambda s: s.astype(str))
        ok = status.loc[g.index] == "ok"
        n_ok, n_flag = int(ok.sum()), int((~ok).sum())
        for label, column, direction in metrics:
            if column not in g.columns:
                continue
            vals = pd.to_numeric(g.loc[ok, column], errors="coerce").to_numpy(dtype=float)
            stat = statistic_of(column)
            mean, lo, hi, n = bootstrap_ci(vals, n_boot=n_boot, seed=seed, alpha=alpha, statistic=stat)
            if column in PER_BATCH_COLUMNS:  # one measurement per batch, copied to its images: no interval
                lo = hi = float("nan")
            rows.append(dict(dataset=dataset, model=model, method=g["method"].iloc[0], variant=variant,
                             method_hash=str(g["method_hash"].iloc[0]) if "method_hash" in g.columns else "",
                             metric_set=set_name, label=label, column=column, direction=direction, mean=mean,
                             lo=lo, hi=hi, n=n, n_ok=n_ok, n_flagged=n_flag, rank=0, statistic=stat, flag=""))
    out = pd.DataFrame(rows, columns=cols)
    if len(out):  # a metric that scored no image of a (dataset, model) did not run there: not shown, not a dash
        out = out[out.groupby(["dataset", "model", "column"])["n"].transform("max") > 0].reset_index(drop=True)
    for key, why in {**separation_flags(df, out, alpha=alpha), **unchanged_flags(df, out)}.items():
        sel = (out["dataset"] == key[0]) & (out["model"] == key[1]) & (out["column"] == key[2])
        out.loc[sel, "flag"] = why
    differ = image_sets(df)  # methods scored on different images (a partial sweep): ranked on the shared ones
    for (dataset, model, column), g in out.groupby(["dataset", "model", "column"], sort=False):
        if (g["flag"] != "").any():  # a column that does not tell methods apart ranks nobody
            continue
        vals = g["mean"].dropna()
        if (dataset, model) in differ:
            vals = shared_means(df, g, column, differ[(dataset, model)]["shared_ids"]).dropna()
        if vals.round(12).nunique() < 2:  # one method, or all tied: nothing to mark
            continue
        distinct = sorted(vals.round(12).unique(), reverse=g["direction"].iloc[0] == "max")
        for r, v in enumerate(distinct[:2], start=1):
            out.loc[vals.index[vals.round(12) == v], "rank"] = r
    out["rank"] = out["rank"].astype(int)
    return sort_paper_order(out)


def shared_means(df: pd.DataFrame, g: pd.DataFrame, column: str, ids) -> pd.Series:
    """The statistic of ``column`` per summary row of ``g`` over the images in ``ids`` only (status ok): what ranks
    methods that were scored on different image sets."""
    fn = np.median if statistic_of(column) == "median" else np.mean
    sub = df[df["image_id"].astype(str).isin(ids)]
    if "status" in sub.columns:
        sub = sub[sub["status"] == "ok"]
    out = {}
    for i, r in g.iterrows():
        v = pd.to_numeric(sub.loc[(sub["dataset"] == r["dataset"]) & (sub["model"] == r["model"])
                                  & (sub["variant"] == r["variant"]), column], errors="coerce").to_numpy(float)
        v = v[np.isfinite(v)]
        out[i] = float(fn(v)) if v.size else np.nan
    return pd.Series(out, dtype=float)


#: runner columns measured once per batch (the batch's time or passes divided by its images)
PER_BATCH_COLUMNS = ("seconds", "passes_fb", "passes_f")
#: the random map's registered name: the floor every faithfulness metric must separate the methods from
RANDOM = "random"


def statistic_of(column: str) -> str:
    """``median`` for completeness errors (a ratio whose denominator f(x) - f(x') can be tiny: a few images would
    dominate a mean), ``mean`` for every other column."""
    return "median" if column == "completeness_error" or column.startswith("completeness.") else "mean"


def separation_flags(df: pd.DataFrame, summary: pd.DataFrame, alpha: float = 0.05
                     ) -> dict[tuple[str, str, str], str]:
    """(dataset, model, column) -> why the column does not tell the methods apart, for the columns that:

    - give every method the same value (e.g. a perturbation that leaves the input unchanged), or
    - where the random map was evaluated: let no method score better than it (paired two-sided Wilcoxon on the
      common images, Holm across the methods, level ``alpha``; the difference in the column's direction).
    Runner columns (seconds, passes) and completeness are not faithfulness scores and are never flagged.
    """
    from .stats import holm, paired_values, wilcoxon_p

    flags = {}
    if summary.empty:
        return flags
    for (dataset, model, column), g in summary.groupby(["dataset", "model", "column"], sort=False):
        if column in PER_BATCH_COLUMNS or statistic_of(column) == "median":
            continue
        means = g["mean"].dropna()
        if len(means) >= 2 and means.round(12).nunique() == 1:
            flags[(dataset, model, column)] = "every method scores the same"
            continue
        rnd = g.loc[(g["method"] == RANDOM) & g["mean"].notna(), "variant"]
        others = [v for v in g.loc[g["mean"].notna(), "variant"] if v not in set(rnd)]
        if rnd.empty or not others:
            continue
        sub = df[(df["dataset"] == dataset) & (df["model"] == model)]
        sign = 1.0 if g["direction"].iloc[0] == "max" else -1.0
        pvals, better = [], []
        for v in others:
            pv = paired_values(sub, column, v, rnd.iloc[0])
            d = (pv["a"] - pv["b"]).to_numpy()
            if len(d):
                pvals.append(wilcoxon_p(d))
                better.append(sign * float(np.mean(d)) > 0)
        adj = holm(pvals)
        if not any(b and np.isfinite(p) and p < alpha for b, p in zip(better, adj)):
            flags[(dataset, model, column)] = (f"no method scores better than the random map (paired Wilcoxon, "
                                               f"Holm, α = {alpha})")
    return flags


#: a metric's per-image output saying its perturbation left the input as it was (Quantus's warning)
UNCHANGED_KEY = "unchanged"


def unchanged_flags(df: pd.DataFrame, summary: pd.DataFrame) -> dict[tuple[str, str, str], str]:
    """(dataset, model, column) -> why, for the columns of a metric whose ``<metric>.unchanged`` output is 1 on most
    scored rows (Quantus warned that its perturbation "didn't cause change in input", at one of its steps at least).
    A few such images do not flag a column: on a black background a step that blackens black pixels is no fault."""
    flags = {}
    for (dataset, model, column), _ in summary.groupby(["dataset", "model", "column"], sort=False):
        flag_col = f"{str(column).partition('.')[0]}.{UNCHANGED_KEY}"
        if column == flag_col or flag_col not in df.columns:
            continue
        sub = df[(df["dataset"] == dataset) & (df["model"] == model)]
        if "status" in sub.columns:
            sub = sub[sub["status"] == "ok"]
        vals = pd.to_numeric(sub[flag_col], errors="coerce").dropna()
        k = int((vals > 0).sum())
        if k > len(vals) / 2:
            flags[(dataset, model, column)] = (f"its perturbation left the input unchanged on {k} of {len(vals)} "
                                               f"scored rows (Quantus: 'perturb_func didn't cause change in input')")
    return flags


def sort_paper_order(frame: pd.DataFrame, method_col: str = "variant") -> pd.DataFrame:
    """Summaries: by dataset, metric set, model, metric column, method. Comparisons (no ``metric_set``): by
    dataset, metric column, model, method. Datasets, models and methods in paper order, the rest as given."""
    if frame.empty:
        return frame.reset_index(drop=True)
    keys = {"dataset": dataset_order(frame["dataset"]), "model": model_order(frame["model"]),
            "column": list(dict.fromkeys(frame["column"])), method_col: _variant_sort_key(frame[method_col])}
    if "metric_set" in frame.columns:
        keys["metric_set"] = list(dict.fromkeys(frame["metric_set"]))
        order = ["dataset", "metric_set", "model", "column", method_col]
    else:
        order = ["dataset", "column", "model", method_col]
    ranks = {f"_k{i}": frame[c].map({v: j for j, v in enumerate(keys[c])}) for i, c in enumerate(order)}
    tmp = frame.assign(**ranks).sort_values(list(ranks), kind="stable")
    return tmp.drop(columns=list(ranks)).reset_index(drop=True)


def status_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Counts of non-ok rows per (dataset, model, variant, status)."""
    if df.empty or "status" not in df.columns:
        return pd.DataFrame(columns=["dataset", "model", "variant", "status", "count"])
    if "variant" not in df.columns:
        df = with_variants(df)
    bad = df[df["status"] != "ok"]
    return bad.groupby(["dataset", "model", "variant", "status"]).size().rename("count").reset_index()


# --------------------------------------------------------------------------------------------- layout
def _decimals(values, column: str = "") -> int:
    v = np.abs(np.asarray([x for x in values if np.isfinite(x)], dtype=float))
    if column.startswith("passes") and v.size and np.all(v == np.round(v)):  # counts per image
        return 0
    if v.size == 0 or v.max() < 10:
        return 3
    return 1 if v.max() < 1000 else 0


def layouts(summary: pd.DataFrame, df: pd.DataFrame | None = None) -> list[Layout]:
    """Turn :func:`summarize`'s long frame into one :class:`Layout` per (dataset, metric set)."""
    out = []
    if summary is None or summary.empty:
        return out
    flagged = status_counts(df) if df is not None else pd.DataFrame()
    differ = image_sets(with_variants(df)) if df is not None and not df.empty else {}
    for dataset in dataset_order(summary["dataset"]):
        sd = summary[summary["dataset"] == dataset]
        for set_name in dict.fromkeys(sd["metric_set"]):
            s = sd[sd["metric_set"] == set_name]
            models = model_order(s["model"])
            metrics = list(dict.fromkeys(zip(s["label"], s["direction"])))
            rows = _variant_sort_key(s["variant"])
            # where methods have different images, every cell with fewer than all of them shows its n
            every = {m: differ.get((dataset, m), {}).get("all", 0) for m in models}
            cells = {(r.variant, r.model, r.label): Cell(r.mean, r.lo, r.hi, int(r.n), int(r.rank),
                                                         max(int(r.n_ok), every[r.model]))
                     for r in s.itertuples(index=False)}
            column_flags = {}
            if "flag" in s.columns:
                for r in s[s["flag"].fillna("") != ""].itertuples(index=False):
                    column_flags.setdefault((r.model, r.label), r.flag)
            counts = {}
            for v in rows:
                per = s[s["variant"] == v].drop_duplicates("model").set_index("model")
                txt = {m: f"{int(per.at[m, 'n_ok'])}/{int(per.at[m, 'n_flagged'])}" for m in models if m in per.index}
                counts[v] = (next(iter(txt.values())) if len(set(txt.values())) == 1
                             else "; ".join(f"{display_model(m)} {t}" for m, t in txt.items()))
            dec = {}
            for label, _ in metrics:
                sel = s[s["label"] == label]
                dec[label] = _decimals(sel["mean"], str(sel["column"].iloc[0]))
            notes = []
            if len(flagged):
                fd = flagged[flagged["dataset"] == dataset]
                for (v, m), g in fd.groupby(["variant", "model"], sort=False):
                    what = ", ".join(f"{c} {st}" for st, c in zip(g["status"], g["count"]))
                    notes.append(f"{display_method(v)} on {display_model(m)}: {what}")
            acc = {}
            if df is not None and {"image_id", "label", "pred"} <= set(df.columns):
                for m in models:
                    acc[m] = accuracy(df[(df["dataset"] == dataset) & (df["model"] == m)])
            out.append(Layout(dataset, set_name, models, metrics, rows, cells, counts, dec, notes, column_flags,
                              acc))
    return out


# --------------------------------------------------------------------------------------------- bundle
@dataclass
class Tables:
    summary: pd.DataFrame
    layouts: list[Layout]
    comparison: pd.DataFrame
    published: pd.DataFrame
    n_boot: int = N_BOOT
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        return render_markdown(self.layouts, self.n_boot)

    def latex(self) -> str:
        return render_latex(self.layouts, self.n_boot)

    def html(self) -> str:
        return render_html(self.layouts, self.n_boot)


def different_images_note(dataset: str, model: str, sets: dict) -> str:
    """The warning of a (dataset, model) whose methods were scored on different image sets."""
    counts = ", ".join(f"{display_method(v)} {n}" for v, n in sets["images"].items())
    return (f"⚠ {dataset} / {display_model(model)}: the methods were scored on different images ({counts} of "
            f"{sets['all']}; {sets['shared']} shared): each cell shows its n, bold and underline rank the means on the "
            f"shared images, and the paired comparisons use those only. A sweep with failed tasks? Re-run it to "
            f"complete.")


def anchor_variants(df: pd.DataFrame, name: str) -> list[str]:
    """The variants a comparison's anchor names: the variant itself, or every config of that method."""
    if "variant" not in df.columns:
        df = with_variants(df)
    variants = list(dict.fromkeys(df["variant"]))
    if name in variants:
        return [name]
    return list(dict.fromkeys(df.loc[df["method"].astype(str) == name, "variant"]))


def build_tables(df: pd.DataFrame, metric_sets: Sequence[str] | None = None, baseline: str | None = "ig",
                 new_method: str | None = None, n_boot: int = N_BOOT, seed: int = SEED, alpha: float = 0.05,
                 published: bool = True) -> Tables:
    """Aggregate a store frame into summary, layouts, paired comparison and published comparison."""
    notes = []
    if df is None or df.empty:
        empty = pd.DataFrame()
        return Tables(summarize(pd.DataFrame(), "diffid"), [], empty, empty, n_boot, ["the store is empty"])
    df = with_variants(df)
    names = list(metric_sets) if metric_sets else available_metric_sets(df)
    parts, used = [], []
    for name in names:
        s = summarize(df, name, n_boot=n_boot, seed=seed, alpha=alpha)
        if s.empty:
            notes.append(f"metric set {name!r}: none of its columns is in the store")
            continue
        parts.append(s)
        used += [(lab, col, d) for lab, col, d in zip(s["label"], s["column"], s["direction"])]
    summary = pd.concat(parts, ignore_index=True) if parts else summarize(pd.DataFrame(), "diffid")
    used = list(dict.fromkeys(m for m in used if m[1] not in ("seconds", "passes_fb", "passes_f")))
    cmp = pd.DataFrame()
    if new_method is not None or baseline is not None:
        anchor = new_method if new_method is not None else baseline
        anchors = anchor_variants(df, anchor)
        if anchors:  # a method stored with several configs: each of them in turn (Holm within each)
            parts = [paired_comparisons(df, used, baseline=None if new_method else a,
                                        new_method=a if new_method else None, n_boot=n_boot, seed=seed, alpha=alpha)
                     for a in anchors]
            cmp = pd.concat(parts, ignore_index=True)
            cmp["_anchor"] = "method" if new_method else "baseline"
            cmp = sort_paper_order(cmp, "method" if baseline else "baseline")
        else:
            notes.append(f"comparison skipped: method {anchor!r} is not in the store (it holds "
                         f"{sorted(set(df['variant']))})")
    notes += [different_images_note(d, m, sets) for (d, m), sets in image_sets(df).items()]  # table.md, console
    pcmp = pub.compare_with_published(summary) if published else pd.DataFrame()
    return Tables(summary, layouts(summary, df), cmp, pcmp, n_boot, notes)


def write_bundle(t: Tables, out_dir) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}

    def put(name, text):
        p = out_dir / name
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(p)
        paths[name] = p

    md = t.markdown()
    if t.notes:
        md += "\n" + "\n".join(f"- note: {n}" for n in t.notes) + "\n"
    put("table.md", md)
    put("table.tex", t.latex())
    put("table.csv", t.summary.to_csv(index=False, lineterminator="\n"))
    from .sanity import write_sanity  # sanity.md / sanity.csv: the randomisation checks' pass/fail verdicts

    paths.update(write_sanity(t.summary, out_dir))
    if not t.comparison.empty:
        put("comparison.md", comparison_markdown(t.comparison))
        put("comparison.csv", t.comparison.drop(columns=["_anchor"], errors="ignore").to_csv(
            index=False, lineterminator="\n"))
    else:  # no comparison asked for (or possible): one left by an earlier call would be read as this one's
        for name in ("comparison.md", "comparison.csv"):
            (out_dir / name).unlink(missing_ok=True)
    if t.published is not None and not t.published.empty:
        put("published_comparison.md", pub.comparison_markdown(t.published))
        put("published_comparison.csv", t.published.to_csv(index=False, lineterminator="\n"))
    from .agreement import write_agreement  # Kendall tau between metrics, summary ranking

    paths.update(write_agreement(t.summary, out_dir))
    return paths


def write_tables(out_dir, metric_sets: Sequence[str] | None = None, baseline: str | None = "ig",
                 new_method: str | None = None, n_boot: int = N_BOOT, seed: int = SEED, alpha: float = 0.05,
                 df: pd.DataFrame | None = None, published: bool = True) -> dict[str, Path]:
    """Read ``out_dir``'s store (or use ``df``) and write the tables into ``out_dir``; returns {file name: path}.

    ``metric_sets``: names/specs (see :func:`resolve_metric_set`); default every set present in the store.
    ``baseline``: compare every other method with it (skipped if absent); ``new_method``: compare it with every
    other method instead.
    """
    if df is None:
        df = load_results(out_dir)
    t = build_tables(df, metric_sets, baseline, new_method, n_boot, seed, alpha, published)
    for n in t.notes:
        warnings.warn(n, stacklevel=2)
    return write_bundle(t, out_dir)


def _check_choices(df: pd.DataFrame, sets: Sequence[str] | None, baseline: str | None,
                   new_method: str | None) -> str | None:
    """What is wrong with the command line's metric sets and comparison anchor for this store, or None."""
    for name in sets or ():
        try:
            found = resolve_metric_set(name, df)[1]
        except ValueError as e:
            return f"--metric-set {name!r}: {e}"
        if not found:
            return (f"--metric-set {name!r}: no column of it is in the store; choose from "
                    f"{available_metric_sets(df)}, a metric prefix, or 'Label=column:max,...'")
    v = with_variants(df)
    for flag, anchor in (("--baseline", baseline), ("--new-method", new_method)):
        if anchor is not None and not anchor_variants(v, anchor):
            choices = sorted(set(v["method"].astype(str)) | set(v["variant"]))
            extra = " (or none)" if flag == "--baseline" else ""
            return f"{flag} {anchor!r} is not in the store: choose one of {choices}{extra}"
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.table", description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", help="experiment folder holding store/")
    ap.add_argument("--metric-set", action="append", dest="metric_sets",
                    help=f"repeatable; one of {sorted(metric_sets())}, a metric prefix, or 'Label=col:max,...'"
                         " (default: every set present)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--baseline", default=None,
                   help="compare every method with this one (default ig where the store has it; 'none' to skip)")
    g.add_argument("--new-method", default=None, help="compare this method with every other one")
    ap.add_argument("--n-boot", type=int, default=N_BOOT)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--no-published", action="store_true", help="skip the comparison with the published numbers")
    ap.add_argument("--print", action="store_true", help="print table.md to stdout")
    a = ap.parse_args(argv)
    from attribution.errors import ConfigError
    from attribution.methods import METHODS

    try:
        METHODS.load_plugins()  # a plugin that fails to import: its one line, before anything is read or written
    except ConfigError as e:
        print(f"benchmarks.table: {e}", file=sys.stderr)
        return 2
    given = a.baseline is not None and a.baseline.lower() != "none"  # an explicit baseline must be in the store
    baseline = None if (a.new_method or (a.baseline is not None and not given)) else (a.baseline or "ig")
    df = load_results(a.out_dir)
    if df.empty:
        print(f"no results under {a.out_dir}/store", file=sys.stderr)
        return 1
    problem = _check_choices(df, a.metric_sets, baseline if given else None, a.new_method)
    if problem:  # before anything is written: a typo never overwrites the tables
        print(f"benchmarks.table: {problem}", file=sys.stderr)
        return 2
    paths = write_tables(a.out_dir, a.metric_sets, baseline, a.new_method, a.n_boot, a.seed, a.alpha, df=df,
                         published=not a.no_published)
    if a.print:
        print(paths["table.md"].read_text(encoding="utf-8"))
    print(json.dumps({k: str(v) for k, v in paths.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
