"""The report in a real headless browser (Chromium through selenium): no JavaScript error, every choice of the
selector draws a leaderboard whose numbers are table.csv's and a forest plot for every baseline it offers (in both
views; the numbers of any baseline equal those ``benchmarks.table --baseline X`` writes), the metric agreement
(Kendall-tau heatmap and the summary ranking of agreement_ranking.csv) renders, every image of the per-image browser
shows its maps and curves, and no file of the report folder names a folder of this machine. Skipped, naming what is
missing, where selenium, Chromium or chromedriver is absent."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import yaml

from benchmarks import run as runner
from benchmarks.report import screenshot as shot

pytestmark = pytest.mark.skipif(bool(shot.missing()), reason="headless-browser report test needs "
                                + ", ".join(shot.missing()) + " (CI installs them in .ci/run)")


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    """A tiny experiment: IG, Gradient x Input and the random map on 12 images (one unreadable: flagged), with
    completeness and DiffID, finished as the runner finishes (tables, grids, report)."""
    from test_run import base_overrides, run_inproc, write_conf

    root = tmp_path_factory.mktemp("report")
    conf = write_conf(root, {"n": 12, "unreadable": ["im/01.png"]})
    (conf / "method" / "t_rnd.yaml").write_text(yaml.safe_dump({"name": "random"}))
    (conf / "metrics" / "t_rep.yaml").write_text(yaml.safe_dump({"completeness": {}, "diffid": {}}))
    out = root / "out"
    for method in ("t_ig", "t_gi", "t_rnd"):
        run_inproc(base_overrides(conf, out, f"method={method}", "metrics=t_rep"))
    runner.finalize(out)
    return out


@pytest.fixture(scope="module")
def driver():
    d = shot.open_browser()
    yield d
    d.quit()


def test_report_in_headless_browser(report_dir, driver):
    problems = shot.check(driver, report_dir)
    assert problems == []
    html = (report_dir / "report.html").read_text()
    board = json.loads(re.search(r"id='board-data'>(.*?)</script>", html).group(1))
    table = pd.read_csv(report_dir / "table.csv")
    scored = table[~table["column"].isin(["seconds", "passes_fb", "passes_f"]) & table["mean"].notna()]
    # nothing empty: the selector offers exactly the (dataset, model, column)s with a finite mean
    assert sorted(board["keys"]) == sorted(set(scored["dataset"] + "|" + scored["model"] + "|" + scored["column"]))
    assert "tiny|tinynet|diffid.diffid" in board["keys"] and board["pairs"] and board["cost"]
    assert list(board["agreement"]) == ["tiny|tinynet"]  # 3 methods: the metric agreement heatmap
    # every method can be the baseline: the selector offers the three, each against the two others
    assert sorted(board["pairs"]["tiny|tinynet|diffid.diffid"]["units"]) == ["grad_input", "ig", "random"]
    assert (report_dir / "agreement.md").exists() and "Kendall" in html
    # the per-image browser: every evaluated (readable) image, each with its pixels beside the maps
    browser = json.loads(re.search(r"id='browser-data'>(.*?)</script>", html).group(1))
    images = browser["tiny|tinynet"]["images"]
    assert len(images) == 11 and all(im["has_pixels"] for im in images)
    # the flagged (unreadable) image is counted in the leaderboard's labels
    ticks = board["leaderboard"]["tiny|tinynet|diffid.diffid"]["data"][0]["y"]
    assert any("(1 flagged)" in t for t in ticks)
    assert (report_dir / "plotly.min.js").exists() and list((report_dir / "figures" / "browser").rglob("*.png"))


@pytest.mark.parametrize("anchor", [dict(baseline="grad_input"), dict(baseline=None, new_method="random")])
def test_every_baseline_of_the_page_equals_the_tables_for_it(report_dir, driver, tmp_path, anchor):
    """The page's forest plot for any baseline (or new method) has the numbers ``benchmarks.table --baseline X``
    (``--new-method X``) writes into comparison.csv: re-tabulated beside the same page, its check still passes."""
    import shutil

    from benchmarks.report.table import write_tables

    other = tmp_path / "other"
    shutil.copytree(report_dir, other)
    write_tables(other, n_boot=2000, **anchor)
    c = pd.read_csv(other / "comparison.csv")
    assert set(c["baseline" if anchor.get("baseline") else "method"]) == {anchor.get("baseline") or "random"}
    assert shot.check(driver, other, images=False) == []
    c.loc[c.index[0], "diff"] += 0.25  # the check does read comparison.csv
    c.to_csv(other / "comparison.csv", index=False)
    assert any("differs from comparison.csv" in p for p in shot.check(driver, other, images=False))


def test_screenshot(report_dir, driver, tmp_path):
    from PIL import Image

    png = shot.screenshot(driver, report_dir, tmp_path / "report.png")
    w, h = Image.open(png).size
    assert w > 800 and h > 600


def test_check_catches_wrong_numbers_paths_and_errors(report_dir, driver, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(report_dir, bad)
    table = pd.read_csv(bad / "table.csv")
    row = table.index[(table["column"] == "diffid.diffid") & (table["method"] == "ig")][0]
    table.loc[row, "mean"] += 0.5
    table.to_csv(bad / "table.csv", index=False)
    (bad / "notes.txt").write_text(f"written in {bad.resolve()}\n")
    ranking = pd.read_csv(bad / "agreement_ranking.csv")
    ranking.loc[0, "median_rank"] += 1
    ranking.to_csv(bad / "agreement_ranking.csv", index=False)
    html = (bad / "report.html").read_text()
    (bad / "report.html").write_text(html.replace("</body>", "<script>undefinedFunction()</script></body>"))
    problems = "\n".join(shot.check(driver, bad))
    assert "diffid.diffid: leaderboard numbers" in problems
    assert "tiny|tinynet: summary ranking" in problems
    assert "absolute path in notes.txt" in problems
    assert "JavaScript error" in problems and "undefinedFunction" in problems
