"""Figures: attribution grids and metric curves (matplotlib, Agg backend, PNG).

- :func:`attribution_grid`: rows = images, columns = the image and one heat map per method. A heat map is the
  authors' ``abs_grayscale_norm`` (MA-GIG / SIG ``attributions.png``): v = Σ_c |A|, shown as
  clip((v - min v) / (p99(v) - min v), 0, 1) in gray.
- :func:`curve_figures`: for every (dataset, model, metric) with ``<metric>.<key>_curve`` columns in the store,
  one PNG with a panel per curve key (e.g. DiffID insertion and deletion, RISE insertion and deletion, PIC SIC /
  AIC) and one line per method: the point-wise mean over images with status ok (median for PIC, as
  ``saliency.metrics.pic.aggregate_individual_pic_results`` does).
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

#: point-wise aggregation of per-image curves, by metric name (default: mean)
CURVE_AGG = {"pic": "median"}
#: axis labels by metric name
CURVE_AXES = {
    "diffid": ("ratio r (ins: bottom-r replaced, del: top-r replaced)", "top-1 accuracy"),
    "insertion_deletion": ("fraction of pixels inserted / deleted", "class probability"),
    "quantus_pixel_flipping": ("fraction of features removed (most relevant first)", "class score"),
    "quantus_road": ("fraction of pixels imputed (most relevant first)", "accuracy"),
    "pic": ("normalised information (WebP size)", "normalised performance"),
}


def trapezoid(y, x) -> float:
    """Trapezoid rule (``np.trapezoid`` on NumPy >= 2, ``np.trapz`` before; the latter is gone in 2.4)."""
    f = getattr(np, "trapezoid", None) or np.trapz
    return float(f(np.asarray(y, dtype=float), np.asarray(x, dtype=float)))


def _mpl():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _np(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().float().cpu().numpy()
    return np.asarray(a, dtype=np.float32)


def abs_grayscale_norm(attr) -> np.ndarray:
    """[C,H,W] (or [H,W]) attribution -> [H,W] in [0,1]: Σ_c|A| mapped to (v − min)/(p99 − min), clipped."""
    a = _np(attr)
    v = np.abs(a).sum(0) if a.ndim == 3 else np.abs(a)
    vmin, vmax = float(v.min()), float(np.percentile(v, 99))
    if not np.isfinite(vmax) or vmax <= vmin:
        return np.zeros_like(v)
    return np.clip((v - vmin) / (vmax - vmin), 0, 1)


def _method_sort(methods):
    from .names import _variant_sort_key

    return _variant_sort_key(methods)


def _display(method):
    from .names import display_method

    return display_method(method)


def attribution_grid(images, attrs: Mapping[str, object], titles: Sequence[str] | None = None, path=None,
                     cmap: str = "gray", cell: float = 1.9, dpi: int = 100, order: str = "paper"):
    """Save an image x method grid of attribution heat maps to ``path`` (PNG) and return the path.

    ``images``: [N,C,H,W] pixels in [0,1] (torch or numpy; C = 1 or 3). ``attrs``: {method: [N,C,H,W]}.
    ``titles``: one label per image row (e.g. "id · class"). ``order``: "paper" sorts the methods in the papers'
    order, "given" keeps the dict order.
    """
    plt = _mpl()
    imgs = _np(images)
    if imgs.ndim == 3:
        imgs = imgs[None]
    n = imgs.shape[0]
    methods = _method_sort(list(attrs)) if order == "paper" else list(attrs)
    maps = {m: _np(attrs[m]) for m in methods}
    for m, a in maps.items():
        if a.shape[0] != n:
            raise ValueError(f"attrs[{m!r}] has {a.shape[0]} images, images has {n}")
    cols = 1 + len(methods)
    fig, axes = plt.subplots(n, cols, figsize=(cell * cols, cell * n + 0.3), dpi=dpi, squeeze=False)
    for i in range(n):
        img = np.clip(imgs[i], 0, 1)
        ax = axes[i, 0]
        if img.shape[0] == 1:
            ax.imshow(img[0], cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(np.moveaxis(img[:3], 0, -1))
        if titles is not None and i < len(titles):
            ax.set_ylabel(str(titles[i]), fontsize=8)
        for j, m in enumerate(methods, start=1):
            axes[i, j].imshow(abs_grayscale_norm(maps[m][i]), cmap=cmap, vmin=0, vmax=1)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("image", fontsize=9)
    for j, m in enumerate(methods, start=1):
        axes[0, j].set_title(_display(m), fontsize=9)
    fig.tight_layout(pad=0.3)
    path = Path(path) if path is not None else Path("attributions.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------------- curves
def curve_columns(df: pd.DataFrame) -> dict[str, list[str]]:
    """{metric: [curve columns]} for the store's ``<metric>.<key>_curve`` columns."""
    out: dict[str, list[str]] = {}
    for c in df.columns:
        if str(c).endswith("_curve"):
            metric = str(c).split(".")[0] if "." in str(c) else "curve"
            out.setdefault(metric, []).append(c)
    first = ["insertion", "deletion", "sic", "aic"]

    def rank(col):
        key = str(col).split(".", 1)[-1].removesuffix("_curve")
        return (first.index(key) if key in first else len(first), key)

    return {m: sorted(cols, key=rank) for m, cols in out.items()}


def _stack(values) -> np.ndarray | None:
    """Per-image curves -> [n, K]; empty and all-NaN curves (skipped images, e.g. PIC) are left out."""
    arrs = [np.asarray(v, dtype=float).ravel() for v in values if v is not None and np.size(v) > 0]
    arrs = [a for a in arrs if np.isfinite(a).any()]
    if not arrs:
        return None
    lengths = pd.Series([a.size for a in arrs])
    k = int(lengths.mode().iloc[0])  # curves of another length (should not happen) are left out
    return np.stack([a for a in arrs if a.size == k])


def mean_curves(df: pd.DataFrame, unit: str = "variant") -> dict[str, dict[str, np.ndarray]]:
    """{curve column: {method: aggregated curve}} over rows with status ok (mean; median for PIC)."""
    if unit not in df.columns:
        unit = "method"
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    out = {}
    for metric, cols in curve_columns(ok).items():
        agg = CURVE_AGG.get(metric, "mean")
        for c in cols:
            lines = {}
            for m in _method_sort(ok[unit].unique()):
                s = _stack(ok.loc[ok[unit] == m, c])
                if s is not None:
                    with np.errstate(all="ignore"), warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (padded curves)
                        lines[m] = np.nanmedian(s, 0) if agg == "median" else np.nanmean(s, 0)
            if lines:
                out[c] = lines
    return out


def curve_x(metric: str, k: int) -> np.ndarray:
    """x positions of a K-point curve of ``metric``: the registry's levels (:func:`attribution.metric_info`, e.g.
    DiffID's ratios 0.1..0.9) when it has K of them; a metric with levels run at another count: K evenly spaced
    interior points 1/(K+1)..K/(K+1); a metric without levels (or not registered): K points on [0, 1]."""
    import attribution

    levels = attribution.metric_info(metric).levels if metric in attribution.available_metrics() else None
    if levels is None:
        return np.linspace(0, 1, k)
    if len(levels) == k:
        return np.asarray(levels, dtype=float)
    return np.arange(1, k + 1) / (k + 1)


def _colors(methods):
    """A fixed colour per method (tab10 + black for the eleventh), grey for random, tab20's light shades else."""
    plt = _mpl()
    from .names import paper_methods

    paper = paper_methods()
    base10, light = plt.get_cmap("tab10"), plt.get_cmap("tab20")
    out = {}
    for i, m in enumerate(methods):
        base = str(m).split("[")[0]
        if base == "random":
            out[m] = "0.55"
        elif base in paper:
            idx = paper.index(base)
            out[m] = base10(idx) if idx < 10 else "black"
        else:
            out[m] = light((2 * i + 1) % 20)
    return out


def _slug(s: str) -> str:
    return re.sub(r"[^0-9A-Za-z_.-]+", "-", str(s)).strip("-")


def curve_figure(df: pd.DataFrame, metric: str, path, title: str | None = None, dpi: int = 110):
    """One PNG with a panel per ``<metric>.*_curve`` column of ``df`` (rows of one dataset and model)."""
    plt = _mpl()
    curves = {c: lines for c, lines in mean_curves(df).items() if c.startswith(metric + ".") or c == metric}
    if not curves:
        return None
    xl, yl = CURVE_AXES.get(metric, ("fraction", "score"))
    fig, axes = plt.subplots(1, len(curves), figsize=(max(6.0, 4.6 * len(curves)), 3.8), dpi=dpi, squeeze=False)
    for ax, (col, lines) in zip(axes[0], curves.items()):
        colors = _colors(list(lines))
        for m, y in lines.items():
            x = curve_x(metric, len(y))
            score = float(np.mean(y)) if metric == "diffid" else trapezoid(y, x) / float(x[-1] - x[0])
            ax.plot(x, y, marker="o" if len(y) <= 20 else None, ms=3, lw=1.6, color=colors[m],
                    ls="--" if str(m).startswith("random") else "-", label=f"{_display(m)} ({score:.3f})")
        key = col.split(".", 1)[-1].removesuffix("_curve")
        ax.set_title(key, fontsize=10)
        ax.set_xlabel(xl, fontsize=8)
        ax.set_ylabel(yl, fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def curve_figures(df: pd.DataFrame, fig_dir) -> list[Path]:
    """Write ``curves__<dataset>__<model>__<metric>.png`` for every curve metric; returns the paths."""
    from .names import dataset_order, model_order
    from .table import with_variants

    if df is None or df.empty or not curve_columns(df):
        return []
    if "variant" not in df.columns:
        df = with_variants(df)
    paths = []
    for d in dataset_order(df["dataset"]):
        dd = df[df["dataset"] == d]
        for mo in model_order(dd["model"]):
            g = dd[dd["model"] == mo]
            for metric in curve_columns(g):
                agg = CURVE_AGG.get(metric, "mean")
                p = curve_figure(g, metric, Path(fig_dir) / f"curves__{_slug(d)}__{_slug(mo)}__{_slug(metric)}.png",
                                 title=f"{d} · {mo} · {metric}\n{agg} over images with status ok; "
                                       f"legend: {'mean' if metric == 'diffid' else 'area'} of each curve")
                if p is not None:
                    paths.append(p)
    return paths
