"""The interactive part of ``report.html``: Plotly figures built in Python, shown through one selector.

:func:`build` turns the tables of :mod:`benchmarks.report.table` (the summary behind ``table.csv``), the paired
comparisons against every baseline (:mod:`.baselines`) and the metric agreement (:mod:`.agreement`) into the
page's data, per (dataset, model, metric column):

- the leaderboard: methods ordered by score, mean with its 95% bootstrap interval as dot and whisker, best and
  second marked (the table's ``rank``), the random map as a dashed reference line, flagged images counted;
- against a baseline: the paired comparisons of every method against every other (:func:`compact_pairs`), from
  which the page's JavaScript draws the forest plot of the baseline the reader picks (or of it as a new method
  against every other), coloured by the Holm-adjusted verdict, the win rate beside each row. :func:`forest_figure`
  draws the same plot in Python (W&B gets it: :mod:`.wandb_log`);
- cost against quality: seconds per image and classifier passes (fwd+bwd) against the score, per method;

per (dataset, model) the metric agreement (Kendall-tau heatmap and median-rank summary, :func:`agreement_figure`),
and a per-image browser (:func:`image_browser`): for each (dataset, model) the images whose pixels the runner kept
(``figures/samples``) plus the others the cache holds maps for, with every method's map on one colour scale
(signed and absolute, a PNG per image under ``figures/browser/``), the image's curves and scores, and the rank
disagreement (1 - Spearman correlation of |A|) of every pair of methods, by which the list can be sorted.

Only what ran is drawn: a (dataset, model, metric) without a finite mean for any method gets no figure, so the
selector never offers it. The figures are stored without their template (the page holds one copy). The page
references Plotly's JavaScript as the one local file ``plotly.min.js`` beside ``report.html``; the folder opens
offline and holds no path of the machine that wrote it.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .names import dataset_order, display_method, display_model, model_order

PLOTLY_JS = "plotly.min.js"
BROWSER_DIR = "browser"
#: the most images per (dataset, model) the browser draws maps for
MAX_BROWSER_IMAGES = 32  # = grids.N_KEPT: the images whose pixels the runner keeps
#: the most points per curve the browser's curve plot keeps (PIC's 1001-point curves are thinned)
MAX_CURVE_POINTS = 101
RUNNER_COLUMNS = ("seconds", "passes_fb", "passes_f")

_VERDICT_COLOUR = {"better": "#0a7d28", "worse": "#b00020"}
_GREY = "#8a8a8a"


def _finite(v) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _fig_json(fig, template: bool = False) -> dict:
    """A figure as plain JSON data (what ``Plotly.newPlot`` takes); without its template unless ``template`` (the
    page holds one copy, :func:`template_json`, and applies it to every figure)."""
    import plotly.io as pio

    out = json.loads(pio.to_json(fig, validate=False, pretty=False, engine="json"))
    if not template:
        out.get("layout", {}).pop("template", None)
    return out


def template_json(name: str = "plotly_white") -> dict:
    """The Plotly template every figure of the page uses, as JSON."""
    import plotly.io as pio
    from plotly.utils import PlotlyJSONEncoder

    return json.loads(json.dumps(pio.templates[name].to_plotly_json(), cls=PlotlyJSONEncoder))


def write_plotly_js(out_dir: Path) -> Path:
    """Plotly's bundled JavaScript as ``<out_dir>/plotly.min.js`` (rewritten only when it changed)."""
    from plotly.offline import get_plotlyjs

    path = Path(out_dir) / PLOTLY_JS
    js = get_plotlyjs()
    if not path.exists() or path.stat().st_size != len(js.encode("utf-8")):
        tmp = path.with_suffix(".js.tmp")
        tmp.write_text(js, encoding="utf-8")
        tmp.replace(path)
    return path


def _metric_key(row) -> str:
    return f"{row['dataset']}|{row['model']}|{row['column']}"


# ------------------------------------------------------------------------------------------------ leaderboard
def leaderboard_figure(g: pd.DataFrame, label: str, direction: str, flag: str = ""):
    """Dot-and-whisker of one (dataset, model, metric): best on top."""
    import plotly.graph_objects as go

    g = g[g["mean"].map(_finite)].copy()
    g = g.sort_values("mean", ascending=direction != "max", kind="stable")
    g = g.iloc[::-1]  # plotly draws the first category at the bottom: best last = on top
    names = [display_method(v) for v in g["variant"]]
    mean = g["mean"].astype(float).to_numpy()
    lo, hi = g["lo"].astype(float).to_numpy(), g["hi"].astype(float).to_numpy()
    has_ci = np.isfinite(lo) & np.isfinite(hi)
    err_plus = np.where(has_ci, hi - mean, 0.0)
    err_minus = np.where(has_ci, mean - lo, 0.0)
    ranks = g["rank"].astype(int).to_numpy() if "rank" in g.columns else np.zeros(len(g), int)
    symbol = ["star" if r == 1 else "diamond" if r == 2 else "circle" for r in ranks]
    colour = ["#d4a017" if r == 1 else "#5b7fa8" if r == 2 else "#333333" for r in ranks]
    size = [15 if r == 1 else 12 if r == 2 else 9 for r in ranks]
    flagged = g["n_flagged"].fillna(0).astype(int).to_numpy() if "n_flagged" in g.columns else np.zeros(len(g), int)
    n = g["n"].fillna(0).astype(int).to_numpy()
    hover = [f"{nm}<br>{label} = {m:.4g}" + (f" [{a:.4g}, {b:.4g}]" if c else " (no interval: n too small)")
             + f"<br>n = {k}" + (f", {f} flagged" if f else "")
             + (" — best" if r == 1 else " — second" if r == 2 else "")
             for nm, m, a, b, c, k, f, r in zip(names, mean, lo, hi, has_ci, n, flagged, ranks)]
    ticks = [f"{nm}  ({f} flagged)" if f else nm for nm, f in zip(names, flagged)]
    fig = go.Figure(go.Scatter(
        x=mean.tolist(), y=ticks, mode="markers", name=label, hovertext=hover, hoverinfo="text",
        marker=dict(symbol=symbol, color=colour, size=size, line=dict(width=0.5, color="#222")),
        error_x=dict(type="data", array=err_plus.tolist(), arrayminus=err_minus.tolist(), visible=True,
                     color="#555", thickness=1.5, width=4)))
    rnd = g[g["method"] == "random"]
    if len(rnd):
        fig.add_vline(x=float(rnd["mean"].iloc[0]), line_dash="dash", line_color=_GREY,
                      annotation_text="random map", annotation_position="top right")
    arrow = "↑ higher is better" if direction == "max" else "↓ lower is better"
    title = f"{label} ({arrow})" + (f"<br><sup>⚠ {html.escape(flag)}</sup>" if flag else "")
    fig.update_layout(title=dict(text=title, font=dict(size=14)), template="plotly_white",
                      height=max(220, 60 + 34 * len(g)), margin=dict(l=10, r=20, t=60, b=40),
                      xaxis_title=f"{label}: mean and 95% bootstrap interval", showlegend=False)
    return fig


# ------------------------------------------------------------------------------------------------ forest
def forest_figure(c: pd.DataFrame, label: str, direction: str):
    """Paired differences (method − baseline, or new method − other) with intervals; colour = Holm verdict."""
    import plotly.graph_objects as go

    c = c[c["diff"].map(_finite)].copy().iloc[::-1]
    anchor_is_baseline = c["baseline"].nunique() == 1
    who = c["method"] if anchor_is_baseline else c["baseline"]
    names = [display_method(v) for v in who]
    d = c["diff"].astype(float).to_numpy()
    lo, hi = c["diff_lo"].astype(float).to_numpy(), c["diff_hi"].astype(float).to_numpy()
    has = np.isfinite(lo) & np.isfinite(hi)
    win = c["win_rate"].astype(float).to_numpy() if "win_rate" in c.columns else np.full(len(c), np.nan)
    verdict = c["verdict"].astype(str).to_list()
    p = c["p_holm"].astype(float).to_numpy() if "p_holm" in c.columns else np.full(len(c), np.nan)
    colour = [_VERDICT_COLOUR.get(v, _GREY) for v in verdict]
    ticks = [f"{nm}  {v}" + (f" · wins {w:.0%}" if np.isfinite(w) else "")
             for nm, v, w in zip(names, verdict, win)]
    hover = [f"{nm}: Δ = {x:.4g}" + (f" [{a:.4g}, {b:.4g}]" if h else " (no interval)")
             + f"<br>Holm p = {q:.3g}, verdict {v}" + (f"<br>win rate {w:.0%}" if np.isfinite(w) else "")
             + f"<br>{k} pairs" for nm, x, a, b, h, q, v, w, k in zip(names, d, lo, hi, has, p, verdict, win,
                                                                        c["n_pairs"].astype(int))]
    fig = go.Figure(go.Scatter(
        x=d.tolist(), y=ticks, mode="markers", hovertext=hover, hoverinfo="text",
        marker=dict(color=colour, size=10, symbol="square"),
        error_x=dict(type="data", array=np.where(has, hi - d, 0).tolist(),
                     arrayminus=np.where(has, d - lo, 0).tolist(), visible=True, color="#555", thickness=1.5)))
    fig.add_vline(x=0, line_color="#222", line_width=1)
    anchor = display_method(c["baseline"].iloc[0]) if anchor_is_baseline else display_method(c["method"].iloc[0])
    what = (f"method − {anchor}" if anchor_is_baseline else f"{anchor} − method")
    better = "right" if direction == "max" else "left"
    fig.update_layout(title=dict(text=f"{label}: paired Δ = {what} (better to the {better})", font=dict(size=14)),
                      template="plotly_white", height=max(200, 60 + 34 * len(c)),
                      margin=dict(l=10, r=20, t=50, b=40), showlegend=False,
                      xaxis_title="paired difference, 95% BCa bootstrap interval")
    return fig


# ------------------------------------------------------------------------------------------------ cost
def cost_figure(g: pd.DataFrame, cost: pd.DataFrame, label: str):
    """Score against seconds per image and against classifier passes, one point per method."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    g = g[g["mean"].map(_finite)].set_index("variant")
    cols = [(c, t) for c, t in (("seconds", "seconds per image"), ("passes_fb", "classifier passes (fwd+bwd)"))
            if c in set(cost["column"])]
    if not cols or g.empty:
        return None
    fig = make_subplots(rows=1, cols=len(cols), shared_yaxes=True, horizontal_spacing=0.06)
    any_point = False
    for k, (col, title) in enumerate(cols, start=1):
        cc = cost[cost["column"] == col].set_index("variant")["mean"]
        vs = [v for v in g.index if v in cc.index and _finite(cc[v])]
        if not vs:
            continue
        any_point = True
        ys = g.loc[vs, "mean"].astype(float)
        err_p = (g.loc[vs, "hi"].astype(float) - ys).where(lambda s: s.notna(), 0)
        err_m = (ys - g.loc[vs, "lo"].astype(float)).where(lambda s: s.notna(), 0)
        fig.add_trace(go.Scatter(
            x=[float(cc[v]) for v in vs], y=ys.tolist(), mode="markers+text", text=[display_method(v) for v in vs],
            textposition="top center", marker=dict(size=9), showlegend=False,
            error_y=dict(type="data", array=err_p.tolist(), arrayminus=err_m.tolist(), visible=True, thickness=1),
            hovertemplate="%{text}<br>" + title + " %{x:.4g}<br>" + label + " %{y:.4g}<extra></extra>"),
            row=1, col=k)
        fig.update_xaxes(title_text=title, row=1, col=k)
    if not any_point:
        return None
    fig.update_yaxes(title_text=label, row=1, col=1)
    fig.update_layout(template="plotly_white", height=340, margin=dict(l=10, r=20, t=30, b=40),
                      title=dict(text=f"{label} against cost", font=dict(size=14)))
    return fig


def agreement_figure(tau: pd.DataFrame, ranking: pd.DataFrame):
    """Metric agreement of one (dataset, model) (:mod:`.agreement`): the heatmap of Kendall's tau between the
    method rankings of every two metrics, and beside it each method's median rank over the metrics (quartiles as
    the bar, best and worst rank as the whisker). None without a tau (fewer than 3 methods or 2 metrics)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if tau.empty:
        return None
    names = list(dict.fromkeys(list(tau["metric_a"]) + list(tau["metric_b"])))
    idx = {n: i for i, n in enumerate(names)}
    z = np.full((len(names), len(names)), np.nan)
    np.fill_diagonal(z, 1.0)
    for r in tau.itertuples(index=False):
        z[idx[r.metric_a], idx[r.metric_b]] = z[idx[r.metric_b], idx[r.metric_a]] = r.tau
    n_use = int(ranking["n_metrics"].max()) if len(ranking) else 0
    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], horizontal_spacing=0.24,
                        subplot_titles=["Kendall τ between the metrics' method rankings",
                                        f"median rank over {n_use} metrics (1 = best)"])
    fig.add_trace(go.Heatmap(z=[[None if not np.isfinite(v) else round(float(v), 4) for v in row] for row in z],
                             x=names, y=names, zmin=-1, zmax=1, colorscale="RdBu",
                             colorbar=dict(x=0.52, len=0.9, thickness=14, title="τ"),
                             hovertemplate="%{y} vs %{x}: τ = %{z}<extra></extra>"), row=1, col=1)
    if len(ranking):
        r = ranking.iloc[::-1]  # best on top
        med = r["median_rank"].astype(float)
        labels = [display_method(v) for v in r["variant"]]
        fig.add_trace(go.Scatter(  # best to worst rank: the whisker
            x=med.tolist(), y=labels, mode="markers", marker=dict(size=1, color="#999"), showlegend=False,
            hoverinfo="skip", error_x=dict(type="data", array=(r["worst_rank"] - med).tolist(),
                                           arrayminus=(med - r["best_rank"]).tolist(), color="#aaa", thickness=1,
                                           width=3)), row=1, col=2)
        hover = [f"{lab}: median rank {m:g} (quartiles {a:g}–{b:g}, best {lo:g}, worst {hi:g}, {k} metrics)"
                 for lab, m, a, b, lo, hi, k in zip(labels, med, r["q1_rank"], r["q3_rank"], r["best_rank"],
                                                    r["worst_rank"], r["n_metrics"])]
        fig.add_trace(go.Scatter(  # the quartiles: the bar, the median: the dot
            x=med.tolist(), y=labels, mode="markers", marker=dict(size=9, color="#5b7fa8"), showlegend=False,
            hovertext=hover, hoverinfo="text",
            error_x=dict(type="data", array=(r["q3_rank"] - med).tolist(), arrayminus=(med - r["q1_rank"]).tolist(),
                         color="#5b7fa8", thickness=5, width=0)), row=1, col=2)
        fig.update_xaxes(title_text="rank (1 = best)", row=1, col=2)
    fig.update_yaxes(autorange="reversed", row=1, col=1)  # the diagonal from the top left, as in agreement.md
    fig.update_layout(template="plotly_white", height=max(380, 90 + 22 * max(len(names), len(ranking))),
                      margin=dict(l=10, r=20, t=50, b=10))
    return fig


_VERDICT_CODE = {"better": 1, "worse": -1}


def _g6(x) -> float | None:
    """A number for the page: 6 significant digits (what the charts show, to far below a pixel), None if not
    finite."""
    return float(f"{float(x):.6g}") if _finite(x) else None


def compact_pairs(c: pd.DataFrame) -> dict:
    """The paired comparisons of one (dataset, model, column) against every baseline, for the page's JavaScript:
    ``{"units": [variant], "labels": [display], "rows": [[method index, baseline index, diff, lo, hi, Holm p,
    verdict (1 better, -1 worse, 0 n.s.), win rate, pairs]]}`` (rows of :func:`.baselines.every_baseline`)."""
    units = _variant_order(list(c["method"]) + list(c["baseline"]))
    at = {u: i for i, u in enumerate(units)}
    rows = [[at[r.method], at[r.baseline], _g6(r.diff), _g6(r.diff_lo), _g6(r.diff_hi), _g6(r.p_holm),
             _VERDICT_CODE.get(str(r.verdict), 0), _g6(r.win_rate), int(r.n_pairs)]
            for r in c.itertuples(index=False) if _finite(r.diff)]
    return {"units": units, "labels": [display_method(u) for u in units], "rows": rows}


def _variant_order(variants) -> list[str]:
    from .names import _variant_sort_key

    return [str(v) for v in _variant_sort_key(list(dict.fromkeys(variants)))]


def build(summary: pd.DataFrame, pairs: pd.DataFrame | None = None, anchor: str | None = "ig",
          anchor_mode: str = "baseline") -> dict:
    """{"keys": [...], "labels": {...}, "leaderboard": {key: fig}, "pairs": {key: compact rows}, "cost": {...},
    "agreement": {dataset|model: fig}, "numbers": {key: {variant: mean}}, "anchor": {...}, "template": {...}};
    a key is ``dataset|model|column``. ``pairs``: the paired comparisons against every baseline
    (:func:`.baselines.every_baseline`), from which the page draws the forest plot of the chosen baseline;
    ``anchor`` / ``anchor_mode`` (``baseline`` | ``method``): what it shows first."""
    from .agreement import kendall, summary_ranking

    out = {"keys": [], "labels": {}, "leaderboard": {}, "pairs": {}, "cost": {}, "numbers": {}, "datasets": [],
           "models": {}, "agreement": {}, "anchor": {"name": anchor, "mode": anchor_mode},
           "template": template_json()}
    if summary is None or summary.empty:
        return out
    s = summary.copy()
    score = s[~s["column"].isin(RUNNER_COLUMNS)]
    cost_all = s[s["column"].isin(RUNNER_COLUMNS)]
    tau_all, rank_all = kendall(score), summary_ranking(score)
    for d in dataset_order(score["dataset"]):
        sd = score[score["dataset"] == d]
        for m in model_order(sd["model"]):
            sm = sd[sd["model"] == m]
            cost = cost_all[(cost_all["dataset"] == d) & (cost_all["model"] == m)]
            af = agreement_figure(tau_all[(tau_all["dataset"] == d) & (tau_all["model"] == m)],
                                  rank_all[(rank_all["dataset"] == d) & (rank_all["model"] == m)])
            if af is not None:
                out["agreement"][f"{d}|{m}"] = _fig_json(af)
            for col in dict.fromkeys(sm["column"]):
                g = sm[sm["column"] == col].drop_duplicates("variant")
                if not g["mean"].map(_finite).any():
                    continue  # nothing empty: a metric that did not run here is not offered
                key = f"{d}|{m}|{col}"
                label, direction = str(g["label"].iloc[0]), str(g["direction"].iloc[0])
                flag = next((str(f) for f in g.get("flag", pd.Series(dtype=str)).fillna("") if f), "")
                out["keys"].append(key)
                out["labels"][key] = dict(dataset=d, model=m, model_label=display_model(m), column=col,
                                          label=label, metric_set=str(g["metric_set"].iloc[0]), direction=direction)
                out["leaderboard"][key] = _fig_json(leaderboard_figure(g, label, direction, flag))
                out["numbers"][key] = {str(v): float(x) for v, x in zip(g["variant"], g["mean"]) if _finite(x)}
                if pairs is not None and not pairs.empty:
                    c = pairs[(pairs["dataset"] == d) & (pairs["model"] == m) & (pairs["column"] == col)]
                    if len(c) and c["diff"].map(_finite).any():
                        out["pairs"][key] = compact_pairs(c)
                cf = cost_figure(g, cost, label) if len(cost) else None
                if cf is not None:
                    out["cost"][key] = _fig_json(cf)
    out["datasets"] = list(dict.fromkeys(out["labels"][k]["dataset"] for k in out["keys"]))
    for k in out["keys"]:
        lab = out["labels"][k]
        out["models"].setdefault(lab["dataset"], [])
        if lab["model"] not in out["models"][lab["dataset"]]:
            out["models"][lab["dataset"]].append(lab["model"])
    return out


# ------------------------------------------------------------------------------------------------ browser
def _reduce(attr: np.ndarray) -> np.ndarray:
    """[C,H,W] or [H,W] -> [H,W]: the sum over channels (the signed map)."""
    a = np.asarray(attr, dtype=np.float32)
    return a.sum(0) if a.ndim == 3 else a


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import rankdata

    ra, rb = rankdata(np.abs(a).ravel()), rankdata(np.abs(b).ravel())
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _map_png(path: Path, image, maps: dict[str, np.ndarray], title: str) -> None:
    """One row of signed maps and one of |maps|, every method on the same colour scale; the image first. Each row is
    one mosaic coloured with numpy (one axes per row, not one per map: a 25-method row draws in a fraction of the
    time)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from .figures import _mpl

    plt = _mpl()
    names = list(maps)
    scaled = [m for m in names if str(m).split("[")[0] != "random"] or names  # the random map is clipped
    stacked = np.stack([maps[m] for m in scaled]) if scaled else np.zeros((1, 1, 1))
    vmax = float(np.percentile(np.abs(stacked), 99.5)) if stacked.size else 1.0
    vmax = vmax if np.isfinite(vmax) and vmax > 0 else 1.0
    h, w = (next(iter(maps.values())).shape if maps else (8, 8))
    gap = max(1, w // 8)
    if image is not None:
        img = np.asarray(image, dtype=np.float32)
        img = img.transpose(1, 2, 0) if img.ndim == 3 else img
        img = np.clip(img.squeeze(), 0, 1)
        tile0 = np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img[..., :3]
    else:
        tile0 = np.full((h, w, 3), 0.93, dtype=np.float32)

    def mosaic(tiles):
        pad = np.ones((h, gap, 3), dtype=np.float32)
        parts = [tile0] + [t for tile in tiles for t in (pad, tile)]
        return np.concatenate([np.asarray(p, dtype=np.float32)[..., :3] for p in parts], axis=1)

    signed = Normalize(-vmax, vmax)
    absolute = Normalize(0, vmax)
    rows = [("signed", "RdBu_r", signed, [colormaps["RdBu_r"](signed(maps[m])) for m in names]),
            ("|A|", "magma", absolute, [colormaps["magma"](absolute(np.abs(maps[m]))) for m in names])]
    ncol = len(names) + 1
    fig, axes = plt.subplots(2, 1, figsize=(1.7 * ncol, 3.7), squeeze=False)
    centers = [w / 2 + k * (w + gap) for k in range(ncol)]
    for r, (label, cmap, norm, tiles) in enumerate(rows):
        ax = axes[r, 0]
        ax.imshow(mosaic(tiles), interpolation="nearest")
        ax.set_yticks([])
        ax.set_ylabel(label, fontsize=8)
        ax.set_xticks(centers if r == 0 else [])
        if r == 0:
            ax.set_xticklabels(["image" if image is not None else "pixels not kept"]
                               + [display_method(m) for m in names], fontsize=8)
            ax.xaxis.tick_top()
        for side in ax.spines.values():
            side.set_visible(False)
        if names:
            fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, fraction=0.02, pad=0.01)
    fig.suptitle(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _curve_figure(rows: pd.DataFrame, curve_cols: dict[str, list[str]]):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from .figures import _stack, curve_x

    panels = []
    for metric, cols in curve_cols.items():
        for c in cols:
            lines = {}
            for _, r in rows.iterrows():
                s = _stack([r.get(c)])
                if s is not None:
                    lines[str(r["variant"])] = s[0]
            if lines:
                panels.append((metric, c, lines))
    if not panels:
        return None
    ncol = min(4, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig = make_subplots(rows=nrow, cols=ncol, subplot_titles=[c.split(".", 1)[-1].removesuffix("_curve")
                                                              for _, c, _ in panels],
                        horizontal_spacing=0.05, vertical_spacing=0.12 if nrow > 1 else 0.1)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
               "#7f7f7f", "#393b79", "#637939"]
    colours = {}
    for i, (metric, _col, lines) in enumerate(panels):
        for v, y in lines.items():
            if v not in colours:
                colours[v] = _GREY if v.split("[")[0] == "random" else palette[len(colours) % len(palette)]
            x = curve_x(metric, y.size)
            step = max(1, int(math.ceil(y.size / MAX_CURVE_POINTS)))
            xs, ys = x[::step], y[::step]
            fig.add_trace(go.Scatter(x=np.round(xs, 4).tolist(), y=[None if not np.isfinite(t) else round(float(t), 5)
                                                                     for t in ys],
                                     mode="lines", name=display_method(v), legendgroup=v, showlegend=i == 0,
                                     line=dict(color=colours[v], width=1.6)),
                          row=i // ncol + 1, col=i % ncol + 1)
    fig.update_layout(template="plotly_white", height=230 * nrow + 40, margin=dict(l=10, r=10, t=40, b=20),
                      legend=dict(orientation="h", y=-0.08))
    return fig


def _cache_for(g: pd.DataFrame, v: str, model_dir: Path, caches: dict) -> Path | None:
    """The cache folder of variant ``v``: ``<method>-<its config hash>-*`` (the latest), else its method's."""
    rows = g[g["variant"] == v]
    method = str(rows["method"].iloc[0])
    h = str(rows["method_hash"].iloc[0]) if "method_hash" in rows.columns else ""
    own = [d for d in model_dir.glob(f"{method}-{h}*") if d.is_dir()] if h else []
    return max(own, key=lambda d: d.stat().st_mtime) if own else caches.get(method)


def image_browser(out_dir: Path, df: pd.DataFrame, summary: pd.DataFrame,
                  max_images: int = MAX_BROWSER_IMAGES) -> dict:
    """{"dataset|model": {"methods": [...], "images": [{id, png, scores, curves, disagree}], "pairs": [...]}}."""
    from ..io.cache import _file_name
    from .figures import curve_columns
    from .grids import _latest_cache_dirs, load_samples, samples_path
    from .table import with_variants

    out_dir = Path(out_dir)
    result: dict = {}
    if df is None or df.empty:
        return result
    df = with_variants(df)
    score_cols = []
    if summary is not None and not summary.empty:
        pairs_ = list(dict.fromkeys((c, lab, ms) for c, lab, ms in zip(summary["column"], summary["label"],
                                                                       summary["metric_set"])
                                    if c not in RUNNER_COLUMNS))
        seen = pd.Series([lab for _, lab, _ in pairs_]).value_counts()
        first = {}
        for c, lab, ms in pairs_:  # a column in two metric sets: its first label
            first.setdefault(c, lab if seen[lab] == 1 else f"{ms}: {lab}")
        score_cols = list(first.items())
    for (dataset, model), g in df.groupby(["dataset", "model"], sort=False):
        model_dir = out_dir / "cache" / str(dataset) / str(model)
        if not model_dir.is_dir():
            continue
        caches = _latest_cache_dirs(model_dir)
        pixels = {}
        sp = samples_path(out_dir, str(dataset), str(model))
        if sp.exists():
            pixels = dict(zip(*load_samples(sp)))
        from .names import _variant_sort_key

        cache_of = {v: _cache_for(g, v, model_dir, caches) for v in dict.fromkeys(g["variant"])}
        variants = _variant_sort_key([v for v, d in cache_of.items() if d is not None])
        if not variants:
            continue
        ids = list(pixels) + [i for i in dict.fromkeys(g["image_id"].astype(str)) if i not in pixels]
        ids = [i for i in ids if all((cache_of[v] / _file_name(i)).exists() for v in variants)][:max_images]
        if not ids:
            continue
        curves = curve_columns(g)
        key = f"{dataset}|{model}"
        pairs = [(a, b) for k, a in enumerate(variants) for b in variants[k + 1:]]
        entry = {"dataset": str(dataset), "model": str(model), "methods": [str(v) for v in variants],
                 "method_labels": [display_method(v) for v in variants],
                 "pairs": [f"{a}~{b}" for a, b in pairs],
                 "pair_labels": [f"{display_method(a)} vs {display_method(b)}" for a, b in pairs],
                 "images": []}
        cols_here = [(c, lab) for c, lab in score_cols if c in g.columns]
        entry["score_labels"] = [lab for _, lab in cols_here]
        for i in ids:
            maps = {}
            for v in variants:
                with np.load(cache_of[v] / _file_name(i)) as c:
                    maps[v] = _reduce(c["attr"].astype(np.float32) * np.float32(c["scale"]))
            from .figures import _slug

            rel = Path("figures") / BROWSER_DIR / f"{_slug(dataset)}__{_slug(model)}" / f"{_slug(i)}.png"
            rows = g[g["image_id"].astype(str) == i].drop_duplicates("variant", keep="last").set_index("variant")
            lab = rows["label"].iloc[0] if "label" in rows.columns and len(rows) else ""
            _map_png(out_dir / rel, pixels.get(i), maps, f"{i} (label {lab})")
            scores = []
            for v in variants:
                rr = rows.loc[v] if v in rows.index else None
                vals = []
                for c, _lab in cols_here:
                    x = rr[c] if rr is not None else None
                    vals.append(round(float(x), 5) if _finite(x) else None)
                st = str(rr["status"]) if rr is not None and "status" in rr.index else ""
                scores.append({"method": display_method(v), "status": st, "values": vals})
            dis = {}
            for a, b in pairs:
                rho = _spearman(maps[a], maps[b])
                dis[f"{a}~{b}"] = None if not np.isfinite(rho) else round(1.0 - rho, 4)
            r_all = rows.reset_index()
            cf = _curve_figure(r_all[r_all["variant"].isin(variants)], curves)
            entry["images"].append({"id": i, "png": rel.as_posix(), "has_pixels": i in pixels,
                                    "scores": scores, "disagree": dis,
                                    "curves": _fig_json(cf) if cf is not None else None})
        result[key] = entry
    return result
