"""Metric agreement: do the metrics rank the methods alike, and which methods rank well across them?

From the summary of :mod:`benchmarks.report.table` (one mean per dataset, model, variant and metric column, with
the column's direction from the metric registry), for every (dataset, model):

- :func:`kendall`: Kendall's tau-b (``scipy.stats.kendalltau``) between the method rankings of every pair of
  metric columns, on the methods both scored (3 or more), each ranking oriented so that the best method ranks
  first: +1 = the two metrics order the methods alike, -1 = in reverse;
- :func:`summary_ranking`: each method's rank under every metric column that tells the methods apart (1 = best,
  ties share the mean rank; columns flagged ⚠ and completeness errors left out), summarised by the median rank
  with its quartiles and its range (best and worst rank) over those columns.

``python -m benchmarks.table`` writes them as ``agreement.md`` and ``agreement.csv`` (the Kendall taus) with
``agreement_ranking.csv`` (the summary ranking); the report draws them (:mod:`.dashboard`).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .names import dataset_order, display_method, display_model, model_order

#: runner columns, not metrics: never part of the agreement
RUNNER = ("seconds", "passes_fb", "passes_f")
#: fewest methods a Kendall tau is computed on
MIN_METHODS = 3

TAU_COLUMNS = ["dataset", "model", "metric_a", "metric_b", "column_a", "column_b", "tau", "p_value", "n_methods"]
RANK_COLUMNS = ["dataset", "model", "variant", "method", "median_rank", "q1_rank", "q3_rank", "best_rank",
                "worst_rank", "n_metrics"]


def _scores(sm: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """variant x column of oriented means (higher = better) of one (dataset, model), and each column's name."""
    sm = sm[~sm["column"].isin(RUNNER)]
    sm = sm[np.isfinite(pd.to_numeric(sm["mean"], errors="coerce").astype(float))]
    sm = sm.drop_duplicates(["column", "variant"])
    if sm.empty:
        return pd.DataFrame(), {}
    sign = np.where(sm["direction"] == "max", 1.0, -1.0)
    wide = (sm.assign(score=sm["mean"].astype(float) * sign)
            .pivot(index="variant", columns="column", values="score"))
    wide = wide.reindex(index=list(dict.fromkeys(sm["variant"])), columns=list(dict.fromkeys(sm["column"])))
    first = sm.drop_duplicates("column").set_index("column")
    seen = first["label"].value_counts()
    names = {c: (str(first.at[c, "label"]) if seen[first.at[c, "label"]] == 1
                 else f"{first.at[c, 'metric_set']}: {first.at[c, 'label']}") for c in wide.columns}
    return wide, names


def _informative(wide: pd.DataFrame) -> list[str]:
    """Columns with at least MIN_METHODS methods that do not give them all one value."""
    return [c for c in wide.columns if wide[c].notna().sum() >= MIN_METHODS and wide[c].dropna().nunique() > 1]


def _groups(summary: pd.DataFrame):
    for d in dataset_order(summary["dataset"]):
        sd = summary[summary["dataset"] == d]
        for m in model_order(sd["model"]):
            yield d, m, sd[sd["model"] == m]


def kendall(summary: pd.DataFrame) -> pd.DataFrame:
    """Kendall's tau-b of every pair of metric columns of every (dataset, model), long (one row per pair)."""
    from scipy.stats import kendalltau

    rows = []
    if summary is None or summary.empty:
        return pd.DataFrame(columns=TAU_COLUMNS)
    for d, m, sm in _groups(summary):
        wide, names = _scores(sm)
        cols = _informative(wide) if not wide.empty else []
        for i, a in enumerate(cols):
            for b in cols[i + 1:]:
                both = wide[[a, b]].dropna()
                if len(both) < MIN_METHODS:
                    continue
                res = kendalltau(both[a].to_numpy(), both[b].to_numpy())
                tau, p = float(res.statistic), float(res.pvalue)
                rows.append(dict(dataset=d, model=m, metric_a=names[a], metric_b=names[b], column_a=a, column_b=b,
                                 tau=tau if math.isfinite(tau) else float("nan"),
                                 p_value=p if math.isfinite(p) else float("nan"), n_methods=len(both)))
    return pd.DataFrame(rows, columns=TAU_COLUMNS)


def ranking_columns(sm: pd.DataFrame, wide: pd.DataFrame) -> list[str]:
    """The columns the summary ranking uses: informative, not flagged ⚠, not a completeness error (the columns
    that tell the methods apart); all informative ones where that leaves none."""
    cols = _informative(wide)
    flag = sm["flag"].fillna("") if "flag" in sm.columns else pd.Series("", index=sm.index)
    flagged = set(sm.loc[flag != "", "column"])
    use = [c for c in cols if c not in flagged and not str(c).startswith("completeness")]
    return use or cols


def summary_ranking(summary: pd.DataFrame) -> pd.DataFrame:
    """Each method's median rank (quartiles, best and worst) over the metric columns of its (dataset, model)."""
    rows = []
    if summary is None or summary.empty:
        return pd.DataFrame(columns=RANK_COLUMNS)
    for d, m, sm in _groups(summary):
        wide, _ = _scores(sm)
        if wide.empty:
            continue
        use = ranking_columns(sm, wide)
        if not use:
            continue
        ranks = wide[use].rank(ascending=False, method="average")
        method_of = sm.drop_duplicates("variant").set_index("variant")["method"]
        part = []
        for v, r in ranks.iterrows():
            r = r.dropna().to_numpy(dtype=float)
            if not r.size:
                continue
            part.append(dict(dataset=d, model=m, variant=v, method=str(method_of.get(v, v)),
                             median_rank=float(np.median(r)), q1_rank=float(np.percentile(r, 25)),
                             q3_rank=float(np.percentile(r, 75)), best_rank=float(r.min()),
                             worst_rank=float(r.max()), n_metrics=int(r.size)))
        rows += sorted(part, key=lambda x: (x["median_rank"], x["q3_rank"], x["worst_rank"]))
    return pd.DataFrame(rows, columns=RANK_COLUMNS)


def _fmt(x, dec=2) -> str:
    return "–" if x is None or not math.isfinite(float(x)) else f"{float(x):.{dec}f}"


def markdown(tau: pd.DataFrame, ranking: pd.DataFrame) -> str:
    """``agreement.md``: per (dataset, model) the matrix of Kendall taus and the summary ranking."""
    out = ["# Metric agreement", "",
           "Kendall's tau-b between the method rankings of two metrics (each oriented so that the best method "
           "ranks first; +1 = the same order, −1 = reversed; methods both scored, 3 or more), and each method's "
           "median rank over the metrics that tell the methods apart (no ⚠, completeness errors left out; "
           "1 = best), with its quartiles and its best and worst rank.", ""]
    keys = list(dict.fromkeys(zip(ranking["dataset"], ranking["model"]))) + \
        list(dict.fromkeys(zip(tau["dataset"], tau["model"])))
    for d, m in dict.fromkeys(keys):
        out += [f"## {d} — {display_model(m)}", ""]
        t = tau[(tau["dataset"] == d) & (tau["model"] == m)]
        if len(t):
            names = list(dict.fromkeys(list(t["metric_a"]) + list(t["metric_b"])))
            val = {}
            for r in t.itertuples(index=False):
                val[(r.metric_a, r.metric_b)] = val[(r.metric_b, r.metric_a)] = r.tau
            out.append("| Kendall τ | " + " | ".join(names) + " |")
            out.append("|---|" + "---:|" * len(names))
            for a in names:
                out.append(f"| {a} | " + " | ".join("1" if a == b else _fmt(val.get((a, b))) for b in names) + " |")
            out.append("")
        r = ranking[(ranking["dataset"] == d) & (ranking["model"] == m)]
        if len(r):
            out += ["| Method | median rank | quartiles | best – worst | metrics |", "|---|---:|---:|---:|---:|"]
            for x in r.itertuples(index=False):
                out.append(f"| {display_method(x.variant)} | {_fmt(x.median_rank, 1)} | {_fmt(x.q1_rank, 1)} – "
                           f"{_fmt(x.q3_rank, 1)} | {_fmt(x.best_rank, 1)} – {_fmt(x.worst_rank, 1)} | "
                           f"{x.n_metrics} |")
            out.append("")
    return "\n".join(out) + "\n"


def write_agreement(summary: pd.DataFrame, out_dir) -> dict[str, Path]:
    """Write ``agreement.md``, ``agreement.csv`` and ``agreement_ranking.csv`` into ``out_dir`` (atomically);
    remove them where the summary has no agreement to show (fewer than 3 methods), so none is stale."""
    out_dir = Path(out_dir)
    tau, ranking = kendall(summary), summary_ranking(summary)
    files = {"agreement.md": markdown(tau, ranking),
             "agreement.csv": tau.to_csv(index=False, lineterminator="\n"),
             "agreement_ranking.csv": ranking.to_csv(index=False, lineterminator="\n")}
    if tau.empty and ranking.empty:
        for name in files:
            (out_dir / name).unlink(missing_ok=True)
        return {}
    paths = {}
    for name, text in files.items():
        p = out_dir / name
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(p)
        paths[name] = p
    return paths
