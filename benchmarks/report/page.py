"""A self-contained HTML report per experiment folder.

``write_report(out_dir)`` (or ``python -m benchmarks.report <out_dir>``) reads the store, (re)writes the tables
(:mod:`benchmarks.report.table`), draws the curve figures into ``<out_dir>/figures/`` (:mod:`.figures`), and
writes ``<out_dir>/report.html`` holding: the tables of every metric set (best bold, second underlined, interval
in the hover text), the paired comparison with the baseline, the comparison with the published numbers, every PNG
under ``figures/`` (curves, and the attribution grids the runner saved there), and the provenance of the rows
(commits, package versions, devices, config hashes, evaluated-id manifests). Images are embedded as base64 so the
file can be mailed or attached on its own.
"""
from __future__ import annotations

import argparse
import base64
import datetime as _dt
import html
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from . import figures as figs
from . import table as tab

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1400px;color:#222}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin-top:22px}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f3f3f3;text-align:center}td.m{text-align:left;font-weight:600}
td small{color:#777}.cap{font-size:12px;color:#555;max-width:1100px}
.fig{margin:10px 0 22px 0}.fig img{max-width:100%;border:1px solid #eee}
.fig figcaption{font-size:12px;color:#555}
.better{color:#0a7d28;font-weight:600}.worse{color:#b00020;font-weight:600}
code{background:#f5f5f5;padding:1px 4px}
"""


def _df_html(df: pd.DataFrame, floatfmt: str = "{:.4f}", classes=None) -> str:
    if df is None or df.empty:
        return "<p class='cap'>(none)</p>"
    cols = list(df.columns)
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in cols) + "</tr>"]
    for row in df.itertuples(index=False):
        cells = []
        for c, v in zip(cols, row):
            if isinstance(v, float):
                txt = "–" if pd.isna(v) else (f"{v:.1e}" if c.startswith("p_") and 0 < v < 1e-3 else floatfmt.format(v))
            else:
                txt = html.escape(str(v))
            cls = f" class='{v}'" if classes and c in classes and v in ("better", "worse") else ""
            cells.append(f"<td{cls}>{txt}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _img_tag(path: Path, embed: bool, rel_to: Path) -> str:
    if embed:
        b64 = base64.b64encode(path.read_bytes()).decode("ascii")
        src = f"data:image/png;base64,{b64}"
    else:
        src = html.escape(str(path.relative_to(rel_to)) if path.is_relative_to(rel_to) else str(path))
    return f"<img src='{src}' alt='{html.escape(path.name)}'>"


def _provenance(df: pd.DataFrame, out_dir: Path) -> str:
    items = []
    if df is not None and not df.empty:
        if "status" in df.columns:
            items.append(f"<li>{len(df)} rows; status: " + ", ".join(
                f"{k} {v}" for k, v in df["status"].value_counts().items()) + "</li>")
        for col, what in [("git_commit", "git commits"), ("config_hash", "config hashes"), ("device", "devices"),
                          ("seed", "seeds")]:
            if col in df.columns:
                vals = sorted(map(str, df[col].dropna().unique()))
                items.append(f"<li>{what}: " + ", ".join(f"<code>{html.escape(v)}</code>" for v in vals[:20])
                             + (f" … ({len(vals)} in all)" if len(vals) > 20 else "") + "</li>")
        if "versions" in df.columns:
            for v in sorted(map(str, df["versions"].dropna().unique()))[:5]:
                items.append(f"<li>versions: <code>{html.escape(v)}</code></li>")
        if "method_hash" in df.columns:
            mh = df.groupby("method")["method_hash"].unique()
            items.append("<li>method configs: " + "; ".join(
                f"{html.escape(m)} " + ", ".join(f"<code>{html.escape(str(h)[:12])}</code>" for h in hs)
                for m, hs in mh.items()) + "</li>")
    for mf in sorted(out_dir.glob("manifest_*.json")):
        try:
            ids = json.loads(mf.read_text()).get("ids", [])
            items.append(f"<li>manifest <code>{mf.name}</code>: {len(ids)} ids</li>")
        except Exception:  # noqa: BLE001
            items.append(f"<li>manifest <code>{mf.name}</code> (unreadable)</li>")
    return "<ul>" + "\n".join(i for i in items if i) + "</ul>"


def write_report(out_dir, df: pd.DataFrame | None = None, title: str | None = None,
                 metric_sets: Sequence[str] | None = None, baseline: str | None = "ig",
                 new_method: str | None = None, n_boot: int = tab.N_BOOT, seed: int = tab.SEED,
                 embed: bool = True, curves: bool = True) -> Path:
    """Write ``<out_dir>/report.html`` (and the tables and curve figures it shows); returns its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if df is None:
        df = tab.load_results(out_dir)
    t = tab.build_tables(df, metric_sets, baseline, new_method, n_boot, seed)
    tab.write_bundle(t, out_dir)
    fig_dir = out_dir / "figures"
    if curves and df is not None and not df.empty:
        figs.curve_figures(df, fig_dir)
    pngs = sorted(fig_dir.rglob("*.png")) if fig_dir.exists() else []
    curve_pngs = [p for p in pngs if p.name.startswith("curves__")]
    other_pngs = [p for p in pngs if p not in curve_pngs]

    title = title or f"Attribution benchmark — {out_dir.name}"
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p class='cap'>Folder <code>{html.escape(out_dir.name)}</code>; generated {now}. Tables also in "
            "<code>table.md</code>, <code>table.tex</code>, <code>table.csv</code>.</p>"]
    if t.notes:
        body.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in t.notes) + "</ul>")
    body += ["<h2>Results</h2>", t.html() if t.layouts else "<p>No results in the store.</p>"]
    if t.comparison is not None and not t.comparison.empty:
        c = t.comparison.copy()
        mode = "every method vs the baseline" if c["_anchor"].iloc[0] == "baseline" else "the new method vs each"
        body.append(f"<h2>Paired comparison ({html.escape(mode)})</h2>")
        body.append("<p class='cap'>Δ = method − baseline on the image ids both scored with status ok; 95% "
                    "BCa bootstrap interval (none below 10 pairs); two-sided Wilcoxon signed-rank p; Holm correction "
                    "across the methods compared within each (dataset, model, metric); verdict at α = 0.05 on the "
                    "Holm p; win rate over the untied images, ties apart.</p>")
        for d in tab.dataset_order(c["dataset"]):
            cd = c[c["dataset"] == d][["model", "column", "method", "baseline", "n_pairs", "diff", "diff_lo",
                                       "diff_hi", "p_wilcoxon", "p_holm", "verdict", "win_rate", "tie_rate"]]
            body += [f"<h3>{html.escape(str(d))}</h3>", _df_html(cd, classes={"verdict"})]
    if t.published is not None and not t.published.empty:
        body.append("<h2>Published numbers</h2>")
        body.append("<p class='cap'>Δ = ours − published on matching (dataset, model, method, metric) cells; "
                    "sources in <code>results/published/*.csv</code>. kind=derived marks a value inferred from "
                    "prose, not printed in a table.</p>")
        p = t.published[["dataset", "model", "method", "label", "ours", "ours_lo", "ours_hi", "n", "published",
                         "delta", "within_ci", "mark", "kind", "source"]]
        body.append(_df_html(p))
    if curve_pngs or other_pngs:
        body.append("<h2>Figures</h2>")
    for p in other_pngs + curve_pngs:
        body.append(f"<figure class='fig'>{_img_tag(p, embed, out_dir)}"
                    f"<figcaption>{html.escape(str(p.relative_to(out_dir)))}</figcaption></figure>")
    body += ["<h2>Provenance</h2>", _provenance(df, out_dir)]
    doc = ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
           f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
           + "\n".join(body) + "\n</body></html>\n")
    path = out_dir / "report.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(path)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.report", description="Write <out_dir>/report.html")
    ap.add_argument("out_dir")
    ap.add_argument("--title")
    ap.add_argument("--metric-set", action="append", dest="metric_sets")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--baseline", default=None, help="default ig where the store has it; 'none' to skip")
    g.add_argument("--new-method")
    ap.add_argument("--n-boot", type=int, default=tab.N_BOOT)
    ap.add_argument("--seed", type=int, default=tab.SEED)
    ap.add_argument("--link-images", action="store_true", help="link the PNGs instead of embedding them")
    a = ap.parse_args(argv)
    given = a.baseline is not None and a.baseline.lower() != "none"
    baseline = None if (a.new_method or (a.baseline is not None and not given)) else (a.baseline or "ig")
    df = tab.load_results(a.out_dir)
    if df.empty:
        print(f"no results under {a.out_dir}/store", file=sys.stderr)
        return 1
    problem = tab._check_choices(df, a.metric_sets, baseline if given else None, a.new_method)
    if problem:  # before anything is written, as benchmarks.table
        print(f"benchmarks.report: {problem}", file=sys.stderr)
        return 2
    p = write_report(a.out_dir, title=a.title, metric_sets=a.metric_sets, baseline=baseline,
                     new_method=a.new_method, n_boot=a.n_boot, seed=a.seed, embed=not a.link_images)
    print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
