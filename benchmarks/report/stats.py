"""Statistics for the result tables: bootstrap intervals, paired comparisons, Wilcoxon and Holm.

Everything here works on plain numpy arrays / pandas frames of per-image values and is deterministic given
``seed``.

- :func:`bootstrap_ci`: mean (or median) with a BCa bootstrap interval (``scipy.stats.bootstrap``; Efron 1987,
  Efron & Tibshirani 1993 ch. 14), none below :data:`MIN_N` values (n too small).
- :func:`wilcoxon_p`: two-sided Wilcoxon signed-rank p-value of paired differences
  (``scipy.stats.wilcoxon``, zero differences dropped as in Wilcoxon's original test; p = 1 when every
  difference is zero).
- :func:`holm`: Holm's (1979) step-down adjustment, p_(i)^adj = max_{j<=i} min(1, (m - j + 1) p_(j)).
- :func:`paired_comparisons`: per (dataset, model, metric) the paired per-image differences
  ``method - baseline`` on the image ids both have with status ok, their mean with a bootstrap interval, the
  Wilcoxon p-value and the Holm-adjusted p-value (family = all comparisons in that (dataset, model, metric)
  cell, i.e. across methods); the win rate leaves ties out (a tie is no loss) and a pair without a common image
  gives no row.
- :func:`image_sets`: the (dataset, model) cells whose methods were scored on different image sets (a partial
  sweep): each method's image count and the shared ones, so tables warn and rank on the shared images.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

#: resampled values (resamples x n) that scipy.stats.bootstrap holds at once; beyond, it resamples in batches
_CHUNK_ELEMS = 4_000_000


#: fewest finite values for which an interval is given; below, the interval is NaN ("n too small"): a bootstrap
#: of a handful of values describes those values, not the population they were drawn from
MIN_N = 10
STATISTICS = ("mean", "median")


def bootstrap_ci(values, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05, statistic: str = "mean"):
    """``statistic`` (mean or median) of ``values`` (NaNs dropped) and its ``1 - alpha`` bootstrap interval.

    The interval is the bias-corrected and accelerated (BCa) one of ``scipy.stats.bootstrap`` (Efron 1987), which
    keeps its coverage for skewed values and small n far better than the percentile interval; where BCa is
    undefined (e.g. a median over heavily tied values) the percentile interval is given. Callers pass the values
    in a fixed order (the tables sort by image id), so the interval does not follow the store's row order, which
    follows scheduling and resumes. Returns
    ``(estimate, lo, hi, n)``: with no values ``(nan, nan, nan, 0)``; with fewer than :data:`MIN_N` values the
    interval is ``(nan, nan)`` (n too small); identical values give the value as both bounds. Resampling is
    seeded by ``(seed, n)`` so a cell's interval does not depend on which other cells were computed.
    """
    import warnings

    from scipy import stats

    if statistic not in STATISTICS:
        raise ValueError(f"statistic={statistic!r}: one of {STATISTICS}")
    fn = np.mean if statistic == "mean" else np.median
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    n = x.size
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    est = float(fn(x))
    if np.all(x == x[0]):
        return est, est, est, n
    if n < MIN_N or n_boot <= 0:
        return est, float("nan"), float("nan"), n
    batch = max(1, _CHUNK_ELEMS // n)
    lo = hi = float("nan")
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DegenerateDataWarning: handled by the fallback below
            res = stats.bootstrap((x,), fn, n_resamples=int(n_boot), confidence_level=1 - alpha, method=method,
                                  vectorized=True, axis=-1, batch=batch,
                                  rng=np.random.default_rng([int(seed), int(n)]))
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if np.isfinite(lo) and np.isfinite(hi):
            break
    return est, lo, hi, n


def wilcoxon_p(diffs) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (NaNs dropped).

    All-zero differences give 1.0 (no evidence of a shift); no differences give NaN.
    """
    from scipy import stats

    d = np.asarray(diffs, dtype=np.float64).ravel()
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan")
    if np.all(d == 0):
        return 1.0
    if d.size <= EXACT_MAX_N:  # as scipy decides (zeros counted), so the p-values equal its own
        return _exact_signed_rank_p(d[d != 0])
    try:
        res = stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    except ValueError:
        return float("nan")
    p = float(res.pvalue)
    return p if np.isfinite(p) else float("nan")


#: up to this many differences the p-value is exact, by enumerating all 2^n sign flips of the ranks
EXACT_MAX_N = 13


def _exact_signed_rank_p(d: np.ndarray) -> float:
    """Exact two-sided p of the signed-rank statistic T+ (midranks of |d|, ties included): 2 min(P(T+ >= t),
    P(T+ <= t)) over the 2^n equally likely sign flips. Equals scipy's ``wilcoxon`` (which runs a permutation test
    there when ranks tie, about a second per call) at a millisecond."""
    from scipy import stats

    r = stats.rankdata(np.abs(d))
    t = r[d > 0].sum()
    flips = ((np.arange(2 ** d.size)[:, None] >> np.arange(d.size)) & 1).astype(np.float64)
    dist = flips @ r
    eps = 1e-9 * max(1.0, float(r.sum()))
    return float(min(1.0, 2 * min((dist >= t - eps).mean(), (dist <= t + eps).mean())))


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values, in the input order. NaNs stay NaN and do not count in m."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return out
    idx = np.flatnonzero(ok)
    order = idx[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def paired_values(df: pd.DataFrame, column: str, a: str, b: str, unit: str = "variant",
                  id_col: str = "image_id") -> pd.DataFrame:
    """Values of ``column`` for units ``a`` and ``b`` on their common ids (status ok, finite values).

    ``df`` holds the rows of one (dataset, model). Returns a frame with columns ``id, a, b`` sorted by id.
    """
    return _join(_scored(df[df[unit] == a], column, id_col), _scored(df[df[unit] == b], column, id_col), id_col)


def _scored(rows: pd.DataFrame, column: str, id_col: str = "image_id") -> pd.Series:
    """The finite values of ``column`` of one unit's rows with status ok, by id (the last row of an id)."""
    s = rows
    if "status" in s.columns:
        s = s[s["status"] == "ok"]
    s = s[[id_col, column]].dropna()
    s = s[np.isfinite(s[column].astype(float))]
    return s.drop_duplicates(id_col, keep="last").set_index(id_col)[column].astype(float)


def _join(va: pd.Series, vb: pd.Series, id_col: str = "image_id") -> pd.DataFrame:
    j = pd.concat({"a": va, "b": vb}, axis=1, join="inner").sort_index()
    return j.reset_index().rename(columns={id_col: "id"})


def paired_comparisons(df: pd.DataFrame, metrics: Iterable[tuple], baseline: str | None = None,
                       new_method: str | None = None, unit: str = "variant", n_boot: int = 2000,
                       seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Paired per-image comparisons, Holm-corrected across methods.

    ``metrics``: iterable of ``(label, column, direction)`` with direction ``"max"`` (higher is better) or
    ``"min"``. Exactly one of:

    - ``baseline``: every other unit vs ``baseline`` (difference = unit - baseline);
    - ``new_method``: ``new_method`` vs every other unit (difference = new_method - other).

    Family for Holm: the comparisons of one (dataset, model, metric). Columns of the result: dataset, model,
    metric (label), column, direction, method, baseline, n_pairs, mean_method, mean_baseline, diff, diff_lo,
    diff_hi, p_wilcoxon, p_holm, verdict ("better" | "worse" | "n.s." relative to the baseline, judged with the
    direction at level ``alpha`` on the Holm-adjusted p-value), win_rate (share of the untied pairs where the
    method is better; 0.5 when every pair ties), tie_rate (share of pairs with equal values). A pair of units
    without a common scored image gives no row.
    """
    if (baseline is None) == (new_method is None):
        raise ValueError("give exactly one of baseline= or new_method=")
    rows = []
    metrics = list(metrics)
    for (dataset, model), g in df.groupby(["dataset", "model"], sort=False):
        units = list(dict.fromkeys(g[unit]))
        anchor = baseline if baseline is not None else new_method
        if anchor not in units:
            continue
        others = [u for u in units if u != anchor]
        pairs = [(u, anchor) for u in others] if baseline is not None else [(anchor, u) for u in others]
        by_unit = dict(tuple(g.groupby(unit, sort=False)))  # split once: each unit's values are read once per column
        for label, column, direction in metrics:
            if column not in g.columns:
                continue
            fam = []
            scored = {u: _scored(by_unit[u], column) for u in units}
            for m, b in pairs:
                pv = _join(scored[m], scored[b])
                d = (pv["a"] - pv["b"]).to_numpy()
                if not len(d):  # no image both scored: nothing to compare (no row of NaNs)
                    continue
                mean, lo, hi, n = bootstrap_ci(d, n_boot=n_boot, seed=seed, alpha=alpha)
                sign = 1.0 if direction == "max" else -1.0
                wins, losses = int(np.sum(sign * d > 0)), int(np.sum(sign * d < 0))
                fam.append(dict(
                    dataset=dataset, model=model, metric=label, column=column, direction=direction,
                    method=m, baseline=b, n_pairs=n,
                    mean_method=float(pv["a"].mean()) if n else float("nan"),
                    mean_baseline=float(pv["b"].mean()) if n else float("nan"),
                    diff=mean, diff_lo=lo, diff_hi=hi, p_wilcoxon=wilcoxon_p(d),
                    win_rate=wins / (wins + losses) if wins + losses else 0.5,
                    tie_rate=float(np.mean(d == 0)),
                ))
            adj = holm([r["p_wilcoxon"] for r in fam])
            for r, p in zip(fam, adj):
                r["p_holm"] = float(p)
                good = (r["diff"] > 0) if direction == "max" else (r["diff"] < 0)
                if np.isfinite(p) and p < alpha and r["diff"] != 0:
                    r["verdict"] = "better" if good else "worse"
                else:
                    r["verdict"] = "n.s."
            rows.extend(fam)
    cols = ["dataset", "model", "metric", "column", "direction", "method", "baseline", "n_pairs", "mean_method",
            "mean_baseline", "diff", "diff_lo", "diff_hi", "p_wilcoxon", "p_holm", "verdict", "win_rate", "tie_rate"]
    return pd.DataFrame(rows, columns=cols)


def accuracy(rows) -> tuple[float, int]:
    """(top-1 accuracy against the label, images) over the distinct classified images of store rows."""
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if df.empty or not {"image_id", "label", "pred"} <= set(df.columns):
        return float("nan"), 0
    seen = df[df["pred"] >= 0].drop_duplicates("image_id")
    if seen.empty:
        return float("nan"), 0
    return float((seen["pred"] == seen["label"]).mean()), int(len(seen))


def image_sets(df: pd.DataFrame, unit: str = "variant", id_col: str = "image_id") -> dict[tuple, dict]:
    """(dataset, model) -> ``{"images": {unit: n}, "shared": n, "shared_ids": ids, "all": n}`` for those whose units
    were evaluated on different image sets (rows of any status count: a flagged image was evaluated). Cells where
    every unit has the same images are left out."""
    out = {}
    if df is None or df.empty or unit not in df.columns or id_col not in df.columns:
        return out
    for (dataset, model), g in df.groupby(["dataset", "model"], sort=False):
        sets = {u: frozenset(s.astype(str)) for u, s in g.groupby(unit, sort=False)[id_col]}
        if len(set(sets.values())) <= 1:
            continue
        every = frozenset().union(*sets.values())
        shared = frozenset.intersection(*sets.values())
        out[(dataset, model)] = {"images": {u: len(v) for u, v in sets.items()}, "shared": len(shared),
                                 "shared_ids": shared, "all": len(every)}
    return out
