"""Figures (attribution grid, curves) and the HTML report."""
import json
import re

import numpy as np
import pandas as pd
import pytest
from synth_store import synth_store, write_store

from benchmarks.report import figures as figs
from benchmarks.report.page import write_report

torch = pytest.importorskip("torch")


def test_abs_grayscale_norm_by_hand():
    a = np.zeros((3, 10, 10), dtype=np.float32)
    a[0] = np.arange(100).reshape(10, 10) / 100.0  # channel sum of |A| = 0..0.99
    a[1] = -a[0]  # abs: doubles it
    v = figs.abs_grayscale_norm(a)
    s = 2 * np.arange(100).reshape(10, 10) / 100.0
    p99 = np.percentile(s, 99)
    np.testing.assert_allclose(v, np.clip(s / p99, 0, 1), rtol=1e-6)
    assert v.max() == 1.0 and v.min() == 0.0 and (v == 1.0).sum() == 1  # only the top 1% saturates
    assert (figs.abs_grayscale_norm(np.ones((3, 4, 4))) == 0).all()  # constant map: no division by zero
    assert figs.abs_grayscale_norm(torch.ones(1, 4, 4)).shape == (4, 4)


def test_attribution_grid_png(tmp_path):
    from PIL import Image

    n, h = 2, 24
    imgs = torch.rand(n, 3, h, h)
    attrs = {"ma_gig": torch.randn(n, 3, h, h), "ig": np.random.rand(n, 3, h, h), "random": torch.rand(n, 3, h, h)}
    p = figs.attribution_grid(imgs, attrs, titles=["a · cat", "b · dog"], path=tmp_path / "grid.png")
    im = Image.open(p)
    w, hh = im.size
    assert w > hh > 100  # 2 rows x 4 columns (image + 3 methods)
    gray = figs.attribution_grid(torch.rand(1, 1, h, h), {"ig": torch.randn(1, 1, h, h)}, path=tmp_path / "g1.png")
    assert gray.exists()
    with pytest.raises(ValueError):
        figs.attribution_grid(imgs, {"ig": torch.rand(3, 3, h, h)}, path=tmp_path / "bad.png")


def test_mean_curves_and_figures(tmp_path):
    df = synth_store(models=("resnet18", "vgg16"), n=10, methods={"ig": 0.2, "sig": 0.6, "random": -0.5},
                     flagged={("imagenet", "resnet18", "ig"): {"bad_model_output": 3}})
    g = df[df.model == "resnet18"]
    mc = figs.mean_curves(g)
    assert set(mc) == {"diffid.insertion_curve", "diffid.deletion_curve", "insertion_deletion.rise_insertion_curve",
                       "insertion_deletion.rise_deletion_curve", "pic.sic_curve", "pic.aic_curve",
                       "quantus_pixel_flipping.quantus_pixel_flipping_curve"}
    ok = g[(g.method == "ig") & (g.status == "ok")]
    np.testing.assert_allclose(mc["diffid.insertion_curve"]["ig"], np.stack(ok["diffid.insertion_curve"]).mean(0))
    sig = g[(g.method == "sig") & (g["pic.sic_skip"] == 0)]  # images PIC skipped (NaN curves) are left out
    assert 0 < len(sig) < (g.method == "sig").sum()
    np.testing.assert_allclose(mc["pic.sic_curve"]["sig"],  # PIC: point-wise median as upstream
                               np.median(np.stack(sig["pic.sic_curve"]), 0))
    assert np.isfinite(mc["pic.sic_curve"]["ig"]).all()
    assert list(mc["diffid.insertion_curve"]) == ["ig", "sig", "random"]
    np.testing.assert_allclose(figs.curve_x("diffid", 9), np.arange(1, 10) / 10)
    paths = figs.curve_figures(df, tmp_path / "figures")
    names = sorted(p.name for p in paths)
    assert names == sorted(f"curves__imagenet__{m}__{k}.png" for m in ("resnet18", "vgg16")
                           for k in ("diffid", "insertion_deletion", "pic", "quantus_pixel_flipping"))
    assert figs.curve_figures(df.drop(columns=[c for c in df.columns if c.endswith("_curve")]), tmp_path) == []


def test_report_html_self_contained(tmp_path):
    df = synth_store(models=("resnet18",), n=8, methods={"ig": 0.2, "guided_ig": 0.4, "ma_gig": 0.8},
                     flagged={("imagenet", "resnet18", "ig"): {"skipped": 1}})
    write_store(df, tmp_path)
    (tmp_path / "manifest_imagenet.json").write_text('{"name": "imagenet", "ids": ["a", "b"]}')
    figs.attribution_grid(torch.rand(2, 3, 16, 16), {"ig": torch.randn(2, 3, 16, 16)},
                          path=tmp_path / "figures" / "attributions__imagenet__resnet18__ig.png")
    (tmp_path / "roar").mkdir()
    (tmp_path / "roar" / "roar.md").write_text("| ROAR | 0.5 |\n")  # a tool's table one folder down
    p = write_report(tmp_path, n_boot=100)
    html = p.read_text()
    assert p.name == "report.html" and html.startswith("<!DOCTYPE html>")
    assert "<h3>imagenet — diffid</h3>" in html and "<b>" in html and "<u>" in html  # the tables, collapsed
    assert "Leaderboard" in html and "Against a baseline" in html and "Published numbers" in html
    assert "manifest_imagenet.json</code>: 2 ids" in html and "abc1234" in html
    assert "<details id='provenance'>" in html
    # Plotly from one local file beside the page; the PNGs linked relatively
    assert "<script src='plotly.min.js'>" in html and (tmp_path / "plotly.min.js").stat().st_size > 1e6
    imgs = re.findall(r"<img src='(figures/[^']+\.png)'", html)
    assert len(imgs) == 5 and all((tmp_path / i).exists() for i in imgs)  # grid + 4 curve figures
    assert "data:image/png" not in html and str(tmp_path) not in html
    board = json.loads(re.search(r"<script type='application/json' id='board-data'>(.*?)</script>", html).group(1))
    summary = pd.read_csv(tmp_path / "table.csv")
    key = "imagenet|resnet18|diffid.diffid"
    assert key in board["keys"] and set(board["pairs"]) <= set(board["keys"])
    # every method is offered as the baseline: the pairs of each one against every other
    assert board["pairs"][key]["units"] == ["ig", "guided_ig", "ma_gig"]
    assert sorted((r[0], r[1]) for r in board["pairs"][key]["rows"]) == [(i, j) for i in range(3) for j in range(3)
                                                                        if i != j]
    # the extra tables of the folder (metric agreement) are in the collapsible tables
    assert "<summary>agreement.md</summary>" in html and "Kendall" in html
    assert "<summary>roar/roar.md</summary>" in html and "| ROAR | 0.5 |" in html
    want = summary[(summary["model"] == "resnet18") & (summary["column"] == "diffid.diffid")]
    assert board["numbers"][key] == pytest.approx(dict(zip(want["variant"], want["mean"])))
    assert not any(k.endswith(("|seconds", "|passes_fb", "|passes_f")) for k in board["keys"])
    for name in ("table.md", "table.tex", "table.csv", "comparison.md"):
        assert (tmp_path / name).exists()
    embedded = write_report(tmp_path, n_boot=50, embed=True, curves=False).read_text()
    assert len(re.findall(r"<img src='data:image/png;base64,", embedded)) == 5


def test_report_on_empty_store(tmp_path):
    html = write_report(tmp_path, n_boot=10).read_text()
    assert "No results" in html


def test_report_cli_typos_fail_listing_choices(tmp_path, capsys):
    from benchmarks.report.page import main

    write_store(synth_store(n=6, models=("resnet18",), methods={"ig": 0.1, "sig": 0.5}), tmp_path)
    assert main([str(tmp_path), "--baseline", "igg"]) == 2
    assert "'igg'" in capsys.readouterr().err and not (tmp_path / "report.html").exists()
    assert main([str(tmp_path), "--metric-set", "difid"]) == 2
    assert main([str(tmp_path), "--n-boot", "20"]) == 0 and (tmp_path / "report.html").exists()
