"""Open a report in a real headless browser (Chromium through selenium): check it and take its screenshot.

``python -m benchmarks.report.screenshot <out_dir> [--png PATH] [--check]`` loads ``<out_dir>/report.html`` in
headless Chromium, and

- ``--check``: reports JavaScript errors (the browser's console at level SEVERE), that every choice of the
  selector (dataset, model, metric) draws a leaderboard chart whose numbers equal ``table.csv``, a forest plot for
  every baseline it offers (the tables' own baseline with ``comparison.csv``'s numbers), and the metric agreement
  (Kendall-tau heatmap, summary ranking as ``agreement_ranking.csv``), that every image
  of the per-image browser shows its maps, and that no file of the folder names an absolute path of this machine;
- writes a screenshot of the page's top (default ``<out_dir>/report.png``).

Needs the ``selenium`` package, a Chromium binary and its driver (Debian: ``apt-get install chromium
chromium-driver``); :func:`missing` says what is absent.
"""
from __future__ import annotations

import argparse
import math
import shutil
import sys
from pathlib import Path

CHROMIUM = ("chromium", "chromium-browser", "google-chrome", "chrome")
DRIVER = ("chromedriver",)


def _which(names) -> str | None:
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    return None


def missing() -> list[str]:
    """What a headless-browser check needs and this machine lacks (empty: all there)."""
    out = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        out.append("the selenium package (pip install selenium)")
    if _which(CHROMIUM) is None:
        out.append("a Chromium binary (apt-get install chromium)")
    if _which(DRIVER) is None:
        out.append("chromedriver (apt-get install chromium-driver)")
    return out


def open_browser(width: int = 1400, height: int = 1100):
    """A headless Chromium driven by selenium, with the console log kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = _which(CHROMIUM)
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--allow-file-access-from-files", f"--window-size={width},{height}"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=opts, service=Service(_which(DRIVER)))


def load(driver, out_dir) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(Path(out_dir, "report.html").resolve().as_uri())
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.readyState") == "complete")


def js_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def absolute_paths(out_dir, needles=None) -> list[str]:
    """Files of ``out_dir`` (every file, binary ones too) that contain an absolute folder of this machine."""
    out_dir = Path(out_dir)
    needles = needles or [str(out_dir.resolve()), str(Path.home()), str(Path.cwd())]
    needles = sorted({n for n in needles if len(n) > 1}, key=len, reverse=True)
    hits = []
    for f in sorted(p for p in out_dir.rglob("*") if p.is_file()):
        data = f.read_bytes()
        for n in needles:
            if n.encode() in data:
                hits.append(f"{f.relative_to(out_dir)}: {n}")
                break
    return hits


def check(driver, out_dir, images: bool = True) -> list[str]:
    """Everything :mod:`this module's <benchmarks.report.screenshot>` ``--check`` checks; returns the problems.
    ``images=False`` leaves the per-image browser out."""
    import pandas as pd

    out_dir = Path(out_dir)
    load(driver, out_dir)
    problems = [f"JavaScript error: {m}" for m in js_errors(driver)]
    if not driver.execute_script("return typeof Plotly !== 'undefined'"):
        return problems + ["Plotly did not load"]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    keys = driver.execute_script("return JSON.parse(document.getElementById('board-data').textContent).keys")
    table = pd.read_csv(out_dir / "table.csv")
    comparison = pd.read_csv(out_dir / "comparison.csv") if (out_dir / "comparison.csv").exists() else None
    ranking = (pd.read_csv(out_dir / "agreement_ranking.csv") if (out_dir / "agreement_ranking.csv").exists()
               else None)
    seen = []

    def options(sel_id):
        return [o.get_attribute("value") for o in Select(driver.find_element(By.ID, sel_id)).options]

    for dataset in options("sel-dataset"):  # every choice of the selector, chosen as a user does (change events)
        Select(driver.find_element(By.ID, "sel-dataset")).select_by_value(dataset)
        for model in options("sel-model"):
            Select(driver.find_element(By.ID, "sel-model")).select_by_value(model)
            for key in options("sel-metric"):
                Select(driver.find_element(By.ID, "sel-metric")).select_by_value(key)
                seen.append(key)
                problems += _check_drawn(driver, key, table)
                problems += _check_forests(driver, key, comparison)
            problems += _check_agreement(driver, dataset, model, ranking)
    if sorted(seen) != sorted(keys):
        problems.append(f"the selector offers {sorted(seen)}, the report holds {sorted(keys)}")
    problems += [f"JavaScript error: {m}" for m in js_errors(driver)]
    n_images = driver.execute_script(
        "const I = JSON.parse(document.getElementById('browser-data').textContent);"
        "return Object.values(I).reduce((s, e) => s + e.images.length, 0)")
    if n_images and images:  # every image of every (dataset, model): its maps load and its curves are drawn
        for dm in options("img-dm"):
            Select(driver.find_element(By.ID, "img-dm")).select_by_value(dm)
            for item in driver.find_elements(By.CSS_SELECTOR, "#img-list div"):
                item.click()
                WebDriverWait(driver, 20).until(lambda d: d.execute_script(
                    "const i = document.querySelector('#img-view img'); return i && i.complete"))
                state = driver.execute_script(
                    "const i = document.querySelector('#img-view img'), c = document.getElementById('img-curves');"
                    "return [i.naturalWidth, c ? c.querySelectorAll('.main-svg').length : 0,"
                    " document.getElementById('img-view').getAttribute('data-curves') === '1']")
                if not state[0]:
                    problems.append(f"per-image browser {dm} {item.get_attribute('data-id')}: maps did not load")
                if state[2] and not state[1]:
                    problems.append(f"per-image browser {dm} {item.get_attribute('data-id')}: no curves drawn")
    problems += [f"absolute path in {h}" for h in absolute_paths(out_dir)]
    return problems


def _check_drawn(driver, key, table) -> list[str]:
    """The leaderboard of ``key`` is drawn and its numbers are table.csv's means of that (dataset, model, column)."""
    dataset, model, column = key.split("|")
    drawn = driver.execute_script(
        "const g = document.getElementById('leaderboard');"
        "return {key: document.body.getAttribute('data-drawn'), svg: g.querySelectorAll('.main-svg').length,"
        " points: g.querySelectorAll('.point').length, x: g.data ? g.data[0].x : null,"
        " agree: document.getElementById('agreement-section').style.display !== 'none',"
        " agree_svg: document.querySelectorAll('#agreement .main-svg').length}")
    if drawn["key"] != key or not drawn["svg"] or not drawn["points"]:
        return [f"{key}: no leaderboard chart drawn ({drawn['points']} points)"]
    rows = table[(table["dataset"] == dataset) & (table["model"] == model) & (table["column"] == column)]
    want = sorted(float(v) for v in rows["mean"] if isinstance(v, float) and math.isfinite(v))
    got = sorted(float(v) for v in drawn["x"])
    if len(want) != len(got) or any(not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, b in zip(want, got)):
        return [f"{key}: leaderboard numbers {got} differ from table.csv {want}"]
    if drawn["agree"] and not drawn["agree_svg"]:
        return [f"{key}: the metric agreement section is shown without a chart"]
    if drawn["points"] != len(want):
        return [f"{key}: {drawn['points']} points drawn for {len(want)} methods"]
    return []


_FORESTS_JS = """
const k = arguments[0], P = JSON.parse(document.getElementById('board-data').textContent).pairs[k];
const sb = document.getElementById('sel-baseline'), sv = document.getElementById('sel-mode'), out = [];
if (!P) return {shown: document.getElementById('against-section').style.display !== 'none', runs: out};
const first = [sb.value, sv.value];
for (const b of Array.from(sb.options).map(o => o.value)) for (const mode of ['baseline', 'method']) {
  sb.value = b; sv.value = mode; sb.dispatchEvent(new Event('change'));
  const g = document.getElementById('forest');
  out.push({b: b, mode: mode, drawn: document.body.getAttribute('data-forest'),
            svg: g.querySelectorAll('.main-svg').length, points: g.querySelectorAll('.point').length,
            x: g.data ? g.data[0].x : null, y: g.data ? g.data[0].y : null,
            want: P.rows.filter(r => P.units[r[1]] === b).length});
}
sb.value = first[0]; sv.value = first[1]; sb.dispatchEvent(new Event('change'));
return {first: first, runs: out};
"""


def _check_forests(driver, key, comparison) -> list[str]:
    """Every baseline of ``key``'s selector, in both views, draws a forest plot with a point per other method; the
    view of the baseline (or new method) the folder's tables were written with has comparison.csv's numbers."""
    import pandas as pd

    res = driver.execute_script(_FORESTS_JS, key)
    runs = res["runs"]
    if not runs:
        return [f"{key}: the comparison section is shown without a baseline to choose"] if res.get("shown") else []
    problems, by = [], {}
    for r in runs:
        by[(r["b"], r["mode"])] = r
        if r["drawn"] != f"{key}~{r['b']}~{r['mode']}" or not r["svg"] or r["points"] != r["want"] or not r["want"]:
            problems.append(f"{key}: baseline {r['b']} ({r['mode']}): {r['points']} points drawn for {r['want']}")
    for b in {r["b"] for r in runs}:  # the new-method view is the baseline view mirrored
        a, m = by.get((b, "baseline")), by.get((b, "method"))
        if a and m and [None if v is None else -v for v in a["x"]] != [None if v is None else v for v in m["x"]]:
            problems.append(f"{key}: baseline {b}: the new-method view is not the baseline view mirrored")
    if comparison is not None and len(comparison):
        dataset, model, column = key.split("|")
        c = comparison[(comparison["dataset"] == dataset) & (comparison["model"] == model)
                       & (comparison["column"] == column)]
        anchors = set(c["baseline"]) if c["baseline"].nunique() == 1 else set(c["method"])
        mode = "baseline" if c["baseline"].nunique() == 1 else "method"
        for anchor in anchors:
            r = by.get((anchor, mode))
            if r is None:
                problems.append(f"{key}: {anchor}, the tables' anchor, is not offered as a baseline")
                continue
            want = sorted(float(v) for v in c["diff"] if pd.notna(v))
            got = sorted(float(v) for v in r["x"] if v is not None)
            if len(want) != len(got) or any(not math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-9)
                                            for a, b in zip(want, got)):
                problems.append(f"{key}: forest against {anchor} {got} differs from comparison.csv {want}")
    return problems


def _check_agreement(driver, dataset, model, ranking) -> list[str]:
    """The metric agreement of (dataset, model): a Kendall-tau heatmap and the summary ranking, one dot per method
    of agreement_ranking.csv, where that file ranks any."""
    if ranking is None:
        return []
    r = ranking[(ranking["dataset"] == dataset) & (ranking["model"] == model)]
    if r.empty:
        return []
    got = driver.execute_script(
        "const g = document.getElementById('agreement');"
        "return {shown: document.getElementById('agreement-section').style.display !== 'none',"
        " heat: g.querySelectorAll('.hm, .heatmaplayer image').length,"
        " types: g.data ? g.data.map(t => t.type || 'scatter') : [],"
        " dots: g.data ? g.data.filter(t => t.hovertext).map(t => t.x) : []}")
    if not got["shown"] or "heatmap" not in got["types"] or not got["heat"]:
        return [f"{dataset}|{model}: no metric agreement heatmap drawn"]
    want = sorted(float(v) for v in r["median_rank"])
    dots = sorted(float(v) for v in (got["dots"][0] if got["dots"] else []))
    if len(dots) != len(want) or any(not math.isclose(a, b, abs_tol=1e-9) for a, b in zip(want, dots)):
        return [f"{dataset}|{model}: summary ranking {dots} differs from agreement_ranking.csv {want}"]
    return []


def screenshot(driver, out_dir, png=None) -> Path:
    """A PNG of the page's first screen (selector, leaderboard, start of the comparison)."""
    out_dir = Path(out_dir)
    load(driver, out_dir)
    png = Path(png) if png else out_dir / "report.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(png))
    return png


def take(out_dir, png=None) -> str:
    """Best effort, for ``make demo``: the screenshot of ``<out_dir>/report.html`` as ``<out_dir>/report.png``;
    returns a line saying what happened (never raises: a machine without Chromium gets the report without it)."""
    lack = missing()
    if lack:
        return "report screenshot skipped: missing " + ", ".join(lack)
    try:
        driver = open_browser()
        try:
            p = screenshot(driver, out_dir, png)
        finally:
            driver.quit()
    except Exception as e:  # noqa: BLE001 -- the screenshot is optional, the report is written
        return f"report screenshot failed: {type(e).__name__}: {e}".splitlines()[0]
    return f"benchmarks.report.screenshot: {Path(p).name}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.report.screenshot", description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--png", help="where the screenshot goes (default <out_dir>/report.png)")
    ap.add_argument("--check", action="store_true", help="check the report in the browser before the screenshot")
    a = ap.parse_args(argv)
    lack = missing()
    if lack:
        print("cannot open a headless browser: missing " + ", ".join(lack), file=sys.stderr)
        return 2
    driver = open_browser()
    try:
        if a.check:
            problems = check(driver, a.out_dir)
            for p in problems:
                print("problem: " + p, file=sys.stderr)
            if problems:
                return 1
            print("report checks passed")
        print(screenshot(driver, a.out_dir, a.png))
    finally:
        driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
