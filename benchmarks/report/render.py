"""Rendering the tables: Markdown, LaTeX (booktabs) and HTML of the :class:`Layout` s that
:func:`benchmarks.report.table.layouts` builds, and the Markdown of the paired comparison."""
from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .names import _tex_escape, display_method, display_model

N_BOOT = 2000


@dataclass
class Cell:
    mean: float = float("nan")
    lo: float = float("nan")
    hi: float = float("nan")
    n: int = 0
    rank: int = 0
    n_ok: int = 0  # the row's images with status ok: a metric that scored fewer shows its own n


def _n_note(c: Cell) -> str:
    return f" (n={c.n})" if c.n_ok and c.n < c.n_ok else ""


@dataclass
class Layout:
    """One table: rows (variants) x columns (model, label, direction) -> Cell."""

    dataset: str
    metric_set: str
    models: list[str]
    metrics: list[tuple[str, str]]  # (label, direction), in column order within a model
    rows: list[str]
    cells: dict[tuple[str, str, str], Cell]
    counts: dict[str, str]  # variant -> "n ok / flagged" text
    decimals: dict[str, int] = field(default_factory=dict)  # label -> decimals
    flagged: list[str] = field(default_factory=list)  # footnote lines
    column_flags: dict[tuple[str, str], str] = field(default_factory=dict)  # (model, label) -> why not a result
    accuracy: dict[str, tuple[float, int]] = field(default_factory=dict)  # model -> (top-1 accuracy, images)


def _accuracy_line(lay: Layout) -> str:
    if not lay.accuracy:
        return ""
    parts = [f"{display_model(m)} {acc:.3f} ({n} images)" for m, (acc, n) in lay.accuracy.items() if n]
    return ("Classifier top-1 accuracy on the evaluated images: " + "; ".join(parts)
            + " (a classifier near chance makes every score above noise).") if parts else ""


def _flag_mark(lay: Layout, model: str, label: str) -> str:
    return " ⚠" if (model, label) in lay.column_flags else ""


def _flag_lines(lay: Layout) -> list[str]:
    return [f"⚠ {display_model(m)} {lab}: {why}; not a result" for (m, lab), why in lay.column_flags.items()]


def _fmt(x: float, d: int) -> str:
    return "–" if not np.isfinite(x) else f"{x:.{d}f}"


def _arrow(direction: str, latex=False) -> str:
    if latex:
        return r"$\uparrow$" if direction == "max" else r"$\downarrow$"
    return "↑" if direction == "max" else "↓"


def _caption(lay: Layout, n_boot: int) -> str:
    return (f"{lay.dataset} — metric set {lay.metric_set}. Mean over images with status ok (completeness "
            f"errors: median) ± half-width of the 95% BCa bootstrap interval ({n_boot} resamples; none where fewer "
            f"than 10 images, nor for seconds and passes, measured per batch); exact bounds in table.csv; (n=k): "
            f"the images a metric scored where fewer than the row's. Best per column bold, second underlined "
            f"(↑ higher is better, ↓ lower is better); ⚠: a column that does not tell methods apart.")


def render_markdown(lays: Sequence[Layout], n_boot: int = N_BOOT) -> str:
    parts = []
    for lay in lays:
        head = ["Method"] + [f"{display_model(m)} {lab}{_arrow(d)}{_flag_mark(lay, m, lab)}" for m in lay.models
                             for lab, d in lay.metrics]
        head.append("n ok / flagged")
        lines = [f"### {lay.dataset} — {lay.metric_set}", "", "| " + " | ".join(head) + " |",
                 "| --- | " + " | ".join("---:" for _ in head[1:-1]) + " | ---: |"]
        for v in lay.rows:
            cells = [display_method(v)]
            for m in lay.models:
                for lab, _ in lay.metrics:
                    c = lay.cells.get((v, m, lab))
                    if c is None or not np.isfinite(c.mean):
                        cells.append("–")
                        continue
                    d = lay.decimals.get(lab, 3)
                    txt = _fmt(c.mean, d)
                    txt = f"**{txt}**" if c.rank == 1 else f"<u>{txt}</u>" if c.rank == 2 else txt
                    if np.isfinite(c.lo) and c.hi > c.lo:
                        txt += f" ±{_fmt((c.hi - c.lo) / 2, d)}"
                    cells.append(txt + _n_note(c))
            cells.append(lay.counts.get(v, ""))
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", _caption(lay, n_boot)]
        if _accuracy_line(lay):
            lines += ["", _accuracy_line(lay)]
        if lay.column_flags:
            lines += ["", *_flag_lines(lay)]
        if lay.flagged:
            lines += ["", "Flagged images (excluded from the means): " + "; ".join(lay.flagged) + "."]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts) if parts else "_No results._\n"


def render_latex(lays: Sequence[Layout], n_boot: int = N_BOOT) -> str:
    parts = ["% needs \\usepackage{booktabs}"]
    for lay in lays:
        k = len(lay.metrics)
        spec = "l" + " ".join("c" * k for _ in lay.models) + " r"
        lines = [r"\begin{table}[t]", r"\centering", r"\small",
                 r"\caption{" + _tex_escape(_caption(lay, n_boot)).replace("±", r"$\pm$").replace(
                     "↑", r"$\uparrow$").replace("↓", r"$\downarrow$").replace("—", "--") + "}",
                 r"\begin{tabular}{" + spec + "}", r"\toprule"]
        top = [""] + [rf"\multicolumn{{{k}}}{{c}}{{{_tex_escape(display_model(m))}}}" for m in lay.models] + [""]
        lines.append(" & ".join(top) + r" \\")
        lines.append(" ".join(rf"\cmidrule(lr){{{2 + i * k}-{1 + (i + 1) * k}}}" for i in range(len(lay.models))))
        sub = ["Method"] + [f"{_tex_escape(lab)}{_arrow(d, latex=True)}" + ("$^\\dagger$" if (m, lab) in
                            lay.column_flags else "") for m in lay.models for lab, d in lay.metrics]
        lines.append(" & ".join(sub + [r"$n$ ok/flagged"]) + r" \\")
        lines.append(r"\midrule")
        for v in lay.rows:
            cells = [display_method(v, latex=True)]
            for m in lay.models:
                for lab, _ in lay.metrics:
                    c = lay.cells.get((v, m, lab))
                    if c is None or not np.isfinite(c.mean):
                        cells.append("--")
                        continue
                    d = lay.decimals.get(lab, 3)
                    txt = _fmt(c.mean, d)
                    txt = rf"\textbf{{{txt}}}" if c.rank == 1 else rf"\underline{{{txt}}}" if c.rank == 2 else txt
                    if np.isfinite(c.lo) and c.hi > c.lo:
                        txt += rf"\,{{\scriptsize$\pm${_fmt((c.hi - c.lo) / 2, d)}}}"
                    cells.append(txt + _n_note(c))
            cells.append(_tex_escape(lay.counts.get(v, "")))
            lines.append(" & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        if lay.column_flags:
            lines.append(r"\par\footnotesize $^\dagger$" + _tex_escape("; ".join(
                f"{display_model(m)} {lab}: {why}" for (m, lab), why in lay.column_flags.items())) + "; not a result.")
        if lay.flagged:
            lines.append(r"\par\footnotesize Flagged (excluded): " + _tex_escape("; ".join(lay.flagged)) + ".")
        lines.append(r"\end{table}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def render_html(lays: Sequence[Layout], n_boot: int = N_BOOT) -> str:
    parts = []
    for lay in lays:
        k = len(lay.metrics)
        h = [f"<h3>{html.escape(lay.dataset)} — {html.escape(lay.metric_set)}</h3>", "<table class='res'>",
             "<tr><th rowspan='2'>Method</th>"
             + "".join(f"<th colspan='{k}'>{html.escape(display_model(m))}</th>" for m in lay.models)
             + "<th rowspan='2'>n ok / flagged</th></tr>",
             "<tr>" + "".join(f"<th>{html.escape(lab)}{_arrow(d)}{_flag_mark(lay, m, lab)}</th>" for m in lay.models
                              for lab, d in lay.metrics)
             + "</tr>"]
        for v in lay.rows:
            row = [f"<td class='m'>{html.escape(display_method(v))}</td>"]
            for m in lay.models:
                for lab, _ in lay.metrics:
                    c = lay.cells.get((v, m, lab))
                    if c is None or not np.isfinite(c.mean):
                        row.append("<td>–</td>")
                        continue
                    d = lay.decimals.get(lab, 3)
                    txt = _fmt(c.mean, d)
                    txt = f"<b>{txt}</b>" if c.rank == 1 else f"<u>{txt}</u>" if c.rank == 2 else txt
                    title = f"95% CI [{_fmt(c.lo, d + 1)}, {_fmt(c.hi, d + 1)}], n={c.n}"
                    ci = f" <small>±{_fmt((c.hi - c.lo) / 2, d)}</small>" if c.hi > c.lo else ""
                    row.append(f"<td title='{title}'>{txt}{ci}{html.escape(_n_note(c))}</td>")
            row.append(f"<td>{html.escape(lay.counts.get(v, ''))}</td>")
            h.append("<tr>" + "".join(row) + "</tr>")
        h.append("</table>")
        h.append(f"<p class='cap'>{html.escape(_caption(lay, n_boot))}</p>")
        h += [f"<p class='cap'>{html.escape(line)}</p>" for line in [_accuracy_line(lay), *_flag_lines(lay)] if line]
        if lay.flagged:
            h.append("<p class='cap'>Flagged images (excluded): " + html.escape("; ".join(lay.flagged)) + ".</p>")
        parts.append("\n".join(h))
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------- comparisons
def comparison_markdown(cmp: pd.DataFrame, alpha: float = 0.05) -> str:
    if cmp is None or cmp.empty:
        return "_No paired comparison (baseline method absent or no common images)._\n"
    out = []
    for (dataset, anchor_col), g in cmp.groupby(["dataset", "_anchor"], sort=False):
        mode = "vs baseline" if anchor_col == "baseline" else "new method vs each"
        anchor = g[anchor_col].iloc[0]
        out += [f"### {dataset} — {display_method(anchor)} ({mode})", "",
                "| Model | Metric | Method | Baseline | Δ = method − baseline [95% CI] | p Wilcoxon | p Holm | "
                "verdict | win rate | ties | n pairs |",
                "| --- | --- | --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: |"]
        for r in g.itertuples(index=False):
            d = 4
            star = "*" if np.isfinite(r.p_holm) and r.p_holm < alpha else ""
            ci = (f"[{r.diff_lo:+.{d}f}, {r.diff_hi:+.{d}f}]" if np.isfinite(r.diff_lo) and np.isfinite(r.diff_hi)
                  else "(n too small)")
            ties = getattr(r, "tie_rate", float("nan"))
            out.append(f"| {display_model(r.model)} | {r.column}{_arrow(r.direction)} | {display_method(r.method)} | "
                       f"{display_method(r.baseline)} | {r.diff:+.{d}f} {ci} | "
                       f"{_pfmt(r.p_wilcoxon)} | {_pfmt(r.p_holm)}{star} | {r.verdict} | "
                       f"{_fmt(r.win_rate, 2)} | {_fmt(ties, 2)} | {r.n_pairs} |")
        out += ["", "Paired on the image ids both methods scored with status ok. Interval: BCa bootstrap of the mean "
                "difference (none below 10 pairs); p: two-sided Wilcoxon signed-rank test; Holm: step-down correction "
                f"across the methods compared in each (model, metric); * and the verdict use α = {alpha} on the Holm "
                "p-value; win rate: share of the untied images where the method is better in the metric's direction "
                "(ties: share of images with equal values, counted neither way).", ""]
    return "\n".join(out) + "\n"


def _pfmt(p: float) -> str:
    if not np.isfinite(p):
        return "–"
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"
