"""Paired comparisons against every baseline at once, for the report's baseline selector.

:func:`every_baseline` gives, for each (dataset, model), the rows that
``stats.paired_comparisons(df, metrics, baseline=b)`` gives for every variant ``b`` in turn (same columns, the
same numbers: ``benchmarks.table --baseline b`` writes them into ``comparison.csv``). It is fast enough to run on
every report: the per-image values are pivoted once per (dataset, model, column) instead of filtered per pair,
and each unordered pair is bootstrapped once. The second direction is the first one mirrored: the resamples are
seeded by (seed, n) alone, so ``b − a`` resamples to exactly the negated values of ``a − b``, whose BCa interval
is the negated, swapped interval (equal to rounding); the Wilcoxon p-value is symmetric. Holm adjusts within each
(dataset, model, column, baseline) family, as ``paired_comparisons`` does.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .stats import bootstrap_ci, holm, wilcoxon_p

COLUMNS = ["dataset", "model", "metric", "column", "direction", "method", "baseline", "n_pairs", "mean_method",
           "mean_baseline", "diff", "diff_lo", "diff_hi", "p_wilcoxon", "p_holm", "verdict", "win_rate", "tie_rate"]


def _wide(g: pd.DataFrame, column: str, unit: str) -> pd.DataFrame:
    """image id x unit values of ``column`` (status ok, finite; the last row of a duplicate id), ids sorted."""
    s = g[g["status"] == "ok"] if "status" in g.columns else g
    v = pd.to_numeric(s[column], errors="coerce").astype(float)
    s = s.assign(_v=v)[np.isfinite(v)]
    s = s.drop_duplicates([unit, "image_id"], keep="last")
    return s.pivot(index="image_id", columns=unit, values="_v").sort_index()


def _pair(d: np.ndarray, n_boot: int, seed: int, alpha: float) -> tuple:
    mean, lo, hi, n = bootstrap_ci(d, n_boot=n_boot, seed=seed, alpha=alpha)
    return mean, lo, hi, n, wilcoxon_p(d)


def every_baseline(df: pd.DataFrame, metrics: Iterable[tuple], unit: str = "variant", n_boot: int = 2000,
                   seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Every ordered (method, baseline) pair of units of each (dataset, model), as ``paired_comparisons`` rows."""
    metrics = list(metrics)
    rows = []
    for (dataset, model), g in df.groupby(["dataset", "model"], sort=False):
        units = list(dict.fromkeys(g[unit]))
        for label, column, direction in metrics:
            if column not in g.columns:
                continue
            w = _wide(g, column, unit)
            sign = 1.0 if direction == "max" else -1.0
            fam: dict[str, list[dict]] = {u: [] for u in units}
            for i, a in enumerate(units):
                for b in units[i + 1:]:
                    if a not in w.columns or b not in w.columns:
                        continue
                    both = w[[a, b]].dropna()
                    if both.empty:
                        continue
                    va, vb = both[a].to_numpy(), both[b].to_numpy()
                    d = va - vb
                    mean, lo, hi, n, p = _pair(d, n_boot, seed, alpha)
                    wins, losses, tie = int(np.sum(sign * d > 0)), int(np.sum(sign * d < 0)), float(np.mean(d == 0))
                    common = dict(dataset=dataset, model=model, metric=label, column=column, direction=direction,
                                  n_pairs=n, p_wilcoxon=p, tie_rate=tie)
                    # a against baseline b, and b against baseline a (the same pairs, mirrored)
                    fam[b].append(dict(common, method=a, baseline=b, mean_method=float(va.mean()),
                                       mean_baseline=float(vb.mean()), diff=mean, diff_lo=lo, diff_hi=hi,
                                       win_rate=wins / (wins + losses) if wins + losses else 0.5))
                    fam[a].append(dict(common, method=b, baseline=a, mean_method=float(vb.mean()),
                                       mean_baseline=float(va.mean()), diff=-mean, diff_lo=-hi, diff_hi=-lo,
                                       win_rate=losses / (wins + losses) if wins + losses else 0.5))
            for b in units:
                rs = sorted(fam[b], key=lambda r: units.index(r["method"]))
                for r, p in zip(rs, holm([r["p_wilcoxon"] for r in rs])):
                    r["p_holm"] = float(p)
                    good = (r["diff"] > 0) if direction == "max" else (r["diff"] < 0)
                    r["verdict"] = ("better" if good else "worse") if np.isfinite(p) and p < alpha and \
                        r["diff"] != 0 else "n.s."
                rows.extend(rs)
    return pd.DataFrame(rows, columns=COLUMNS)
