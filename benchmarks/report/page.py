"""A self-contained report folder per experiment.

``write_report(out_dir)`` (or ``python -m benchmarks.report <out_dir>``) reads the store, (re)writes the tables
(:mod:`benchmarks.report.table`), draws the curve figures into ``<out_dir>/figures/`` (:mod:`.figures`), and
writes ``<out_dir>/report.html``: one selector (dataset, model, metric) over the Plotly figures of
:mod:`.dashboard` (leaderboard with bootstrap intervals, paired comparison as a forest plot against any method
chosen as the baseline, cost against quality, metric agreement), the per-image browser (maps of every method on one
colour scale, curves, scores, sorted by how much two methods disagree), the comparison with the published numbers,
the tables (``table.md``, and every other Markdown table of the folder: ``agreement.md``, ROAR's ...) and figures as
collapsible blocks, and the provenance of the rows (versions, commits, devices, seeds, config hashes, manifests,
the command). ``--wandb [MODE]`` also logs the report's tables and charts as one W&B run (:mod:`.wandb_log`).
Plotly's JavaScript is the local file ``plotly.min.js`` and the PNGs are linked relatively, so the folder opens
offline on its own; no file names a folder of the machine that wrote it (``embed=True`` puts the PNGs into the
page as base64 instead). :mod:`.screenshot` opens it in headless Chromium to check it and take its picture.
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
from .names import display_method

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


_CSS += """
.bar{position:sticky;top:0;background:#fff;padding:8px 0;border-bottom:1px solid #ddd;z-index:5}
.bar label{margin-right:14px;font-size:13px}.bar select{font-size:13px;margin-left:4px}
.chart{min-height:120px}.row2{display:flex;gap:16px;flex-wrap:wrap}.row2>div{flex:1 1 600px}
details{margin:10px 0}summary{cursor:pointer;font-weight:600}
#img-list{max-height:480px;overflow-y:auto;border:1px solid #ddd;min-width:220px;font-size:12.5px}
#img-list div{padding:3px 6px;cursor:pointer}#img-list div.sel{background:#dbe8f7}
#img-view{min-width:0}#img-view img{max-width:100%;border:1px solid #eee}.scroll{overflow-x:auto}
.flex{display:flex;gap:14px}
.bar2 label{margin-right:14px;font-size:13px}.bar2 select{font-size:13px;margin-left:4px}
pre.md{font-size:12px;overflow-x:auto;background:#fafafa;padding:6px}
"""

_DASHBOARD_HTML = """
<div class='bar' id='selector'>
<label>dataset <select id='sel-dataset'></select></label>
<label>model <select id='sel-model'></select></label>
<label>metric <select id='sel-metric'></select></label>
</div>
<h2>Leaderboard</h2>
<p class='cap'>Mean over the images with status ok (completeness errors: median) and its 95% BCa bootstrap interval
(none below 10 images); ★ best, ◆ second, as the tables mark them (none where a column does not tell methods apart,
⚠); the dashed line is the random map; flagged images (status not ok, left out) are counted beside the method.</p>
<div id='leaderboard' class='chart'></div>
<div id='against-section'>
<h2>Against a baseline (paired comparison)</h2>
<div class='bar2'><label>baseline <select id='sel-baseline'></select></label>
<label>view <select id='sel-mode'><option value='baseline'>every method − the baseline</option>
<option value='method'>the baseline as a new method − every other</option></select></label></div>
<p class='cap'>Paired per-image differences on the images both scored, 95% BCa bootstrap interval (none below 10
pairs); colour: Holm-adjusted (across the methods compared with the chosen one) two-sided Wilcoxon verdict at
α = 0.05 (green better, red worse, grey n.s.); win rate over the untied images. Any method can be the baseline:
the numbers are those <code>python -m benchmarks.table &lt;folder&gt; --baseline NAME</code> (or
<code>--new-method NAME</code>) writes into <code>comparison.csv</code>; {MODE}.</p>
<div id='forest' class='chart'></div>
</div>
<div id='cost-section'>
<h2>Cost against quality</h2>
<p class='cap'>Seconds per image and classifier passes (forward+backward) per image against the score; seconds are
measured per batch, so they carry no interval.</p>
<div id='cost' class='chart'></div>
</div>
<div id='agreement-section'>
<h2>Metric agreement</h2>
<p class='cap'>For the chosen dataset and model: Kendall's τ between the method rankings of every two metrics (each
oriented so that the best method ranks first: +1 = they order the methods alike, −1 = reversed; 3 methods or more),
and each method's median rank over the metrics that tell methods apart (no ⚠; completeness left out): the dot is the
median, the bar the quartiles, the whisker the best and worst rank. As tables in <code>agreement.md</code>.</p>
<div id='agreement' class='chart'></div>
</div>
"""

_BROWSER_HTML = """
<h2>Per-image browser</h2>
<p class='cap'>Each method's map on one colour scale (top: signed, sum over channels; bottom: |A|; the scale is the
99.5th percentile of |A| over the methods of that image, the random map left out of it and clipped), the image's
curves and scores; the pixels are shown for the images the runner kept (figures/samples). Sort the images by how
much two methods disagree: 1 − Spearman correlation of their |A| rankings.</p>
<div class='bar'>
<label>dataset / model <select id='img-dm'></select></label>
<label>sort by disagreement of <select id='img-pair'></select></label>
</div>
<div class='flex'><div id='img-list'></div><div id='img-view' style='flex:1'></div></div>
"""

_JS = r"""
(function(){
const B = JSON.parse(document.getElementById('board-data').textContent);
const I = JSON.parse(document.getElementById('browser-data').textContent);
const cfg = {responsive: true, displaylogo: false};
function plot(id, fig){  // every figure of the page shares one template (B.template)
  const layout = Object.assign({template: B.template}, fig.layout);
  return Plotly.react(id, fig.data, layout, cfg);
}
function opt(sel, values, labels, keep){
  const prev = keep ? sel.value : null; sel.innerHTML = '';
  values.forEach((v, i) => { const o = document.createElement('option'); o.value = v;
    o.textContent = labels ? labels[i] : v; sel.appendChild(o); });
  if (prev && values.includes(prev)) sel.value = prev;
}
const sd = document.getElementById('sel-dataset'), sm = document.getElementById('sel-model'),
      sk = document.getElementById('sel-metric'), sb = document.getElementById('sel-baseline'),
      sv = document.getElementById('sel-mode');
function key(){ return sk.value; }
const VERDICT = {'1': 'better', '-1': 'worse', '0': 'n.s.'}, VCOL = {'1': '#0a7d28', '-1': '#b00020', '0': '#8a8a8a'};
function fmt(x){ return x === null ? '–' : Number(x).toPrecision(4); }
function forest(k, anchor, mode){
  // the forest plot of the paired differences against `anchor` (mode 'baseline': method − anchor; 'method':
  // anchor − method, the same pairs mirrored), from the rows benchmarks.report.baselines computed
  const P = B.pairs[k], lab = B.labels[k], a = P.units.indexOf(anchor), mirror = mode === 'method';
  const rows = P.rows.filter(r => r[1] === a).slice().reverse();  // plotly's first category is the bottom
  const neg = x => x === null ? null : -x;
  const d = rows.map(r => mirror ? neg(r[2]) : r[2]), lo = rows.map(r => mirror ? neg(r[4]) : r[3]),
        hi = rows.map(r => mirror ? neg(r[3]) : r[4]), v = rows.map(r => String(mirror ? -r[6] : r[6])),
        win = rows.map(r => r[7] === null ? null : (mirror ? 1 - r[7] : r[7]));
  const names = rows.map(r => P.labels[r[0]]);
  const who = mirror ? P.labels[a] + ' ' : '';  // whose verdict and win rate: the method's, or the new method's
  const ticks = names.map((n, i) => n + '  ' + (v[i] === '0' ? '' : who) + VERDICT[v[i]] + (win[i] === null ? '' :
    ' · ' + who + 'wins ' + Math.round(100 * win[i]) + '%'));
  const has = d.map((x, i) => lo[i] !== null && hi[i] !== null);
  const hover = names.map((n, i) => n + ': Δ = ' + fmt(d[i]) + (has[i] ? ' [' + fmt(lo[i]) + ', ' + fmt(hi[i]) + ']'
    : ' (no interval)') + '<br>Holm p = ' + fmt(rows[i][5]) + ', verdict ' + VERDICT[v[i]] +
    (win[i] === null ? '' : '<br>win rate ' + Math.round(100 * win[i]) + '%') + '<br>' + rows[i][8] + ' pairs');
  const what = mirror ? P.labels[a] + ' − method' : 'method − ' + P.labels[a];
  const better = lab.direction === 'max' ? 'right' : 'left';
  return {data: [{type: 'scatter', mode: 'markers', x: d, y: ticks, hovertext: hover, hoverinfo: 'text',
                  marker: {color: v.map(c => VCOL[c]), size: 10, symbol: 'square'},
                  error_x: {type: 'data', array: d.map((x, i) => has[i] ? hi[i] - x : 0),
                            arrayminus: d.map((x, i) => has[i] ? x - lo[i] : 0), visible: true, color: '#555',
                            thickness: 1.5}}],
          layout: {title: {text: lab.label + ': paired Δ = ' + what + ' (better to the ' + better + ')',
                           font: {size: 14}}, height: Math.max(200, 60 + 34 * rows.length),
                   margin: {l: 10, r: 20, t: 50, b: 40}, showlegend: false,
                   xaxis: {title: {text: 'paired difference, 95% BCa bootstrap interval'}},
                   shapes: [{type: 'line', xref: 'x', yref: 'paper', x0: 0, x1: 0, y0: 0, y1: 1,
                             line: {color: '#222', width: 1}}]}};
}
function anchors(k){
  // the baselines offered for `k`: its units; the one chosen before stays, else the page's default
  const P = B.pairs[k]; if (!P) return;
  const prev = sb.value, units = P.units.filter((u, i) => P.rows.some(r => r[1] === i));
  opt(sb, units, units.map(u => P.labels[P.units.indexOf(u)]));
  for (const w of [prev, B.anchor.name]) {
    const hit = !w ? null : units.includes(w) ? w : units.find(u => u.split('[')[0] === w);
    if (hit) { sb.value = hit; return; }
  }
}
function drawForest(){
  const k = key(), P = B.pairs[k];
  document.getElementById('against-section').style.display = P ? '' : 'none';
  if (!P) { Plotly.purge('forest'); document.body.setAttribute('data-forest', ''); return; }
  const f = forest(k, sb.value, sv.value); plot('forest', f);
  document.body.setAttribute('data-forest', k + '~' + sb.value + '~' + sv.value);
}
function draw(){
  const k = key(); if (!k) return;
  plot('leaderboard', B.leaderboard[k]);
  anchors(k); drawForest();
  const co = B.cost[k];
  document.getElementById('cost-section').style.display = co ? '' : 'none';
  if (co) plot('cost', co); else Plotly.purge('cost');
  const ag = B.agreement[sd.value + '|' + sm.value];
  document.getElementById('agreement-section').style.display = ag ? '' : 'none';
  if (ag) plot('agreement', ag); else Plotly.purge('agreement');
  document.body.setAttribute('data-drawn', k);
}
function metrics(){
  const ks = B.keys.filter(k => B.labels[k].dataset === sd.value && B.labels[k].model === sm.value);
  opt(sk, ks, ks.map(k => B.labels[k].metric_set + ' — ' + B.labels[k].label), true); draw();
}
function models(){
  const ms = B.models[sd.value] || [];
  opt(sm, ms, null, true); metrics();
}
if (B.keys.length){
  sv.value = B.anchor.mode || 'baseline';
  opt(sd, B.datasets); sd.onchange = models; sm.onchange = metrics; sk.onchange = draw;
  sb.onchange = drawForest; sv.onchange = drawForest; models();
}
window.reportSelect = function(k){
  const l = B.labels[k]; sd.value = l.dataset; models(); sm.value = l.model; metrics(); sk.value = k; draw();
};
// ---------------------------------------------------------------- per-image browser
const dm = document.getElementById('img-dm'); if (!dm) return;
const pair = document.getElementById('img-pair'), list = document.getElementById('img-list'),
      view = document.getElementById('img-view');
const ESC = {'&': '&amp;', '<': '&lt;', '>': '&gt;', "'": '&#39;', '"': '&quot;'};
function esc(s){ return String(s).replace(/[&<>'"]/g, c => ESC[c]); }
function show(e, im){
  Array.from(list.children).forEach(d => d.classList.toggle('sel', d.dataset.id === im.id));
  let h = "<img alt='maps of " + esc(im.id) + "' src='" + esc(im.png) + "'>";
  h += "<div class='scroll'><table><tr><th>method</th><th>status</th>" +
    e.score_labels.map(l => '<th>' + esc(l) + '</th>').join('') + '</tr>';
  im.scores.forEach(s => { h += "<tr><td class='m'>" + esc(s.method) + '</td><td>' + esc(s.status) + '</td>' +
    s.values.map(v => '<td>' + (v === null ? '–' : v.toPrecision(4)) + '</td>').join('') + '</tr>'; });
  h += "</table></div><div id='img-curves' class='chart'></div>"; view.innerHTML = h;
  view.setAttribute('data-curves', im.curves ? '1' : '0');
  if (im.curves) plot('img-curves', im.curves);
}
function fill(){
  const e = I[dm.value]; if (!e) return;
  opt(pair, e.pairs, e.pair_labels, true);
  const p = pair.value, ims = e.images.slice();
  if (p) ims.sort((a, b) => (b.disagree[p] ?? -1) - (a.disagree[p] ?? -1));
  list.innerHTML = '';
  ims.forEach(im => { const d = document.createElement('div'); d.dataset.id = im.id;
    const v = p ? im.disagree[p] : null;
    d.textContent = im.id + (v === null || v === undefined ? '' : '  (' + v.toFixed(3) + ')');
    d.onclick = () => show(e, im); list.appendChild(d); });
  if (ims.length) show(e, ims[0]);
}
const dms = Object.keys(I);
opt(dm, dms, dms.map(k => k.replace('|', ' / ')));
dm.onchange = fill; pair.onchange = fill; fill();
})();
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


def _scrub(text: str, out_dir: Path) -> str:
    """``text`` without the machine's folders: the report's own folder becomes ``.``, the working folder and the
    home folder are dropped."""
    roots = {str(out_dir.resolve()): ".", str(out_dir): ".", str(Path.cwd()): ".", str(Path.home()): "~"}
    for root, to in sorted(roots.items(), key=lambda kv: -len(kv[0])):
        if len(root) > 1 and Path(root).is_absolute():
            text = text.replace(root, to)
    return text


def _scrub_command(cmd: str, out_dir: Path) -> str:
    """A command line with every absolute path argument reduced to its last part."""
    import re

    cmd = _scrub(cmd, out_dir)
    return " ".join(re.sub(r"(^|=)/(?:[^\s/]+/)*([^\s/]*)", r"\1\2", w) for w in cmd.split(" "))


def _command() -> str:
    mod = sys.modules.get("__main__")
    spec = getattr(mod, "__spec__", None)
    head = f"python -m {spec.name}" if spec is not None and spec.name else f"python {Path(sys.argv[0]).name}"
    return " ".join([head, *sys.argv[1:]])


def _provenance_block(df: pd.DataFrame, out_dir: Path) -> str:
    cmd = html.escape(_scrub_command(_command(), out_dir))
    return ("<details id='provenance'><summary>Provenance: versions, git commit, device, command, seeds</summary>"
            f"<ul><li>report written by <code>{cmd}</code></li></ul>" + _provenance(df, out_dir) + "</details>")


def _finite_json(obj):
    """``obj`` with every non-finite float as None (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_json(v) for v in obj]
    return obj


def _json_script(name: str, obj) -> str:
    text = json.dumps(_finite_json(obj), separators=(",", ":"), allow_nan=False, default=str)
    return f"<script type='application/json' id='{name}'>" + text.replace("</", "<\\/") + "</script>"


#: tables of the folder the page shows otherwise (the leaderboard, the forest plot, the published numbers)
_SHOWN_TABLES = ("table.md", "comparison.md", "published_comparison.md")


#: sub-folders of an experiment that hold no tables
_NOT_TABLES = ("cache", "store", "figures", "wandb")


def _extra_tables(out_dir: Path) -> list[Path]:
    """The folder's other Markdown tables, beside ``table.md`` or one folder down (metric agreement, sanity, ROAR's
    ``roar/roar.md``: any a tool of the harness writes)."""
    found = [p for p in out_dir.glob("*.md") if p.name not in _SHOWN_TABLES]
    found += [p for p in out_dir.glob("*/*.md") if p.parent.name not in _NOT_TABLES]
    return sorted(p for p in found if p.is_file())


def write_report(out_dir, df: pd.DataFrame | None = None, title: str | None = None,
                 metric_sets: Sequence[str] | None = None, baseline: str | None = "ig",
                 new_method: str | None = None, n_boot: int = tab.N_BOOT, seed: int = tab.SEED,
                 embed: bool = False, curves: bool = True, browser: bool = True, tables=None) -> Path:
    """Write ``<out_dir>/report.html`` (and the tables, curve figures, browser maps and ``plotly.min.js`` it uses);
    returns its path. The folder is self-contained: it opens offline, PNGs are referenced relatively (``embed``
    puts them into the page as base64 instead) and no file names a path of the machine that wrote it. ``tables``:
    the :func:`benchmarks.report.table.build_tables` of ``df`` with these settings, where the caller has them."""
    from . import dashboard as dash

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if df is None:
        df = tab.load_results(out_dir)
    t = tables if tables is not None else tab.build_tables(df, metric_sets, baseline, new_method, n_boot, seed)
    tab.write_bundle(t, out_dir)
    fig_dir = out_dir / "figures"
    if curves and df is not None and not df.empty:
        figs.curve_figures(df, fig_dir)
    pngs = sorted(fig_dir.rglob("*.png")) if fig_dir.exists() else []
    pngs = [p for p in pngs if dash.BROWSER_DIR not in p.relative_to(fig_dir).parts]
    curve_pngs = [p for p in pngs if p.name.startswith("curves__")]
    other_pngs = [p for p in pngs if p not in curve_pngs]

    title = title or f"Attribution benchmark — {out_dir.name}"
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    from .baselines import every_baseline

    metrics = list(dict.fromkeys((lab, col, d) for lab, col, d in zip(t.summary["label"], t.summary["column"],
                                                                        t.summary["direction"])
                                 if col not in dash.RUNNER_COLUMNS)) if not t.summary.empty else []
    pairs = every_baseline(tab.with_variants(df), metrics, n_boot=n_boot, seed=seed) if metrics else None
    anchor, anchor_mode = (new_method, "method") if new_method else (baseline, "baseline")
    board = dash.build(t.summary, pairs, anchor, anchor_mode)
    images = dash.image_browser(out_dir, df, t.summary) if browser else {}
    dash.write_plotly_js(out_dir)
    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p class='cap'>Folder <code>{html.escape(out_dir.name)}</code>; generated {now}. Numbers also in "
            "<code>table.md</code>, <code>table.tex</code>, <code>table.csv</code>"
            + (", <code>comparison.csv</code>" if not t.comparison.empty else "") + ".</p>"]
    if t.notes:
        body.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in t.notes) + "</ul>")
    if not board["keys"]:
        body.append("<p>No results in the store.</p>")
    else:
        if t.comparison.empty:
            mode = "this folder's tables hold no comparison"
        elif new_method:
            name = html.escape(display_method(str(new_method)))
            mode = f"the folder's tables compare the new method {name} with each"
        else:
            mode = f"the folder's tables compare every method with {html.escape(display_method(str(baseline)))}"
        body.append(_DASHBOARD_HTML.replace("{MODE}", mode))
    if images:
        body.append(_BROWSER_HTML)
    if t.published is not None and not t.published.empty:
        body.append("<h2>Published numbers</h2>")
        body.append("<p class='cap'>Δ = ours − published on matching (dataset, model, method, metric) cells; "
                    "sources in <code>results/published/*.csv</code>. kind=derived marks a value inferred from "
                    "prose, not printed in a table.</p>")
        p = t.published[["dataset", "model", "method", "label", "ours", "ours_lo", "ours_hi", "n", "published",
                         "delta", "within_ci", "mark", "kind", "source"]]
        body.append(_df_html(p))
    if t.layouts:
        body.append("<details><summary>All tables (as in table.md)</summary>" + t.html() + "</details>")
    for md in _extra_tables(out_dir):
        body.append(f"<details><summary>{html.escape(md.relative_to(out_dir).as_posix())}</summary><pre class='md'>"
                    + html.escape(md.read_text(encoding="utf-8")) + "</pre></details>")
    if curve_pngs or other_pngs:
        body.append("<details><summary>Figures: mean curves and attribution grids</summary>")
        for p in other_pngs + curve_pngs:
            body.append(f"<figure class='fig'>{_img_tag(p, embed, out_dir)}"
                        f"<figcaption>{html.escape(str(p.relative_to(out_dir)))}</figcaption></figure>")
        body.append("</details>")
    body += ["<h2>Provenance</h2>", _provenance_block(df, out_dir)]
    body += [_json_script("board-data", board), _json_script("browser-data", images), f"<script>{_JS}</script>"]
    doc = ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
           f"<title>{html.escape(title)}</title><style>{_CSS}</style>"
           f"<script src='{dash.PLOTLY_JS}'></script></head><body>\n"
           + "\n".join(body) + "\n</body></html>\n")
    doc = _scrub(doc, out_dir)
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
    ap.add_argument("--embed-images", action="store_true", help="embed the PNGs as base64 instead of linking them")
    ap.add_argument("--wandb", nargs="?", const="", default=None, metavar="MODE",
                    help="also log the report's tables and charts to W&B as one run (offline, online; default: "
                         "as WANDB_MODE says)")
    ap.add_argument("--wandb-project", help="W&B project (default WANDB_PROJECT, else attribution-bench)")
    ap.add_argument("--wandb-group", help="W&B group (e.g. the sweep's)")
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
                     new_method=a.new_method, n_boot=a.n_boot, seed=a.seed, embed=a.embed_images)
    print(p)
    if a.wandb is not None:
        return _to_wandb(a, baseline)
    return 0


def _to_wandb(a, baseline) -> int:
    """The report's tables and charts as one W&B run; 1 (with what was missed) when W&B did not get them."""
    from .wandb_log import report_to_wandb, sync_hint

    lg = report_to_wandb(a.out_dir, mode=a.wandb or None, project=a.wandb_project, group=a.wandb_group,
                         baseline=baseline, new_method=a.new_method, n_boot=a.n_boot, seed=a.seed)
    if lg.saved_to is not None:
        print(sync_hint(lg.saved_to))
    if lg.failures:
        print(f"benchmarks.report: W&B did not get the report ({', '.join(sorted({f['op'] for f in lg.failures}))};"
              f" first: {lg.failures[0]['error']}); what it missed is in "
              f"{Path(a.out_dir) / 'wandb_not_logged.jsonl'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
