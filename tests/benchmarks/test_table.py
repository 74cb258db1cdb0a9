"""Tables: paper layout, bold/underline, intervals, flagged rows, comparisons, published numbers."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synth_store import synth_store, write_store

from benchmarks.report import published as pub
from benchmarks.report import table as tab

REPO = Path(__file__).resolve().parents[2]
NB = 200  # bootstrap resamples in tests


def _known_frame():
    """Two models, three methods with fixed per-image values (means known exactly)."""
    rows = []
    vals = {"ig": (0.20, 0.50, 0.30), "guided_ig": (0.40, 0.60, 0.20), "grad_input": (0.10, 0.45, 0.35)}
    for model in ("vgg16", "resnet18"):
        for method, (d, i, de) in vals.items():
            for k in range(10):
                eps = (k - 4.5) / 100  # symmetric around 0: means exact
                rows.append(dict(dataset="imagenet", model=model, method=method, method_hash=f"{method}-h",
                                 image_id=f"im{k}", status="ok",
                                 **{"diffid.diffid": d + eps, "diffid.insertion": i + eps,
                                    "diffid.deletion": de - eps}))
    df = pd.DataFrame(rows)
    # a flagged row with a wild value must be excluded and counted
    bad = df.iloc[[0]].copy()
    bad["image_id"], bad["status"], bad["diffid.diffid"] = "im_bad", "bad_model_output", 99.0
    return pd.concat([df, bad], ignore_index=True)


def test_summarize_means_ranks_and_flags():
    s = tab.summarize(_known_frame(), "diffid", n_boot=NB)
    assert list(dict.fromkeys(s["model"])) == ["resnet18", "vgg16"]  # paper order R18, VGG16, IncV1
    cell = s[(s.model == "vgg16") & (s.method == "ig") & (s.label == "DiffID")].iloc[0]
    assert cell["mean"] == pytest.approx(0.20) and cell.n == 10 and cell.n_ok == 10 and cell.n_flagged == 1
    assert cell.lo < 0.20 < cell.hi
    r = s[s.model == "vgg16"].set_index(["label", "method"])["rank"]
    assert r[("DiffID", "guided_ig")] == 1 and r[("DiffID", "ig")] == 2 and r[("DiffID", "grad_input")] == 0
    assert r[("Del", "guided_ig")] == 1 and r[("Del", "ig")] == 2  # lower is better
    assert list(dict.fromkeys(s["method"])) == ["grad_input", "ig", "guided_ig"]


def test_markdown_latex_layout():
    df = _known_frame()
    t = tab.build_tables(df, ["diffid"], baseline=None, n_boot=NB, published=False)
    md = t.markdown()
    head = [ln for ln in md.splitlines() if ln.startswith("| Method")][0]
    assert head.split(" | ")[1:4] == ["R18 DiffID↑", "R18 Ins↑", "R18 Del↓"]
    assert "VGG16 DiffID↑" in head and head.rstrip(" |").endswith("n ok / flagged")
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and not ln.startswith(("| Method", "| ---"))]
    assert [r.split(" | ")[0][2:] for r in rows] == ["G×I", "IG", "GIG"]
    gig = rows[2].split(" | ")
    assert gig[1].startswith("**0.400**") and "<u>0.200</u>" in rows[1]
    assert "±" in gig[1]
    assert "IG on VGG16: 1 bad_model_output" in md
    assert rows[1].split(" | ")[-1].rstrip(" |") == "R18 10/0; VGG16 10/1"
    tex = t.latex()
    assert r"\textbf{0.400}" in tex and r"\underline{0.200}" in tex and r"\multicolumn{3}{c}{R18}" in tex
    assert r"G$\times$I" in tex and r"bad\_model\_output" in tex
    html = t.html()
    assert "<b>0.400</b>" in html and "<u>0.200</u>" in html and "colspan='3'" in html


def test_ties_and_single_method_not_marked():
    df = _known_frame()
    df = df[df.method == "ig"]
    s = tab.summarize(df, "diffid", n_boot=NB)
    assert (s["rank"] == 0).all()
    df2 = _known_frame()
    df2.loc[df2.method == "grad_input", "diffid.diffid"] = df2.loc[df2.method == "guided_ig", "diffid.diffid"].values
    s2 = tab.summarize(df2, "diffid", n_boot=NB)
    r = s2[(s2.model == "vgg16") & (s2.label == "DiffID")].set_index("method")["rank"]
    assert r["guided_ig"] == 1 and r["grad_input"] == 1 and r["ig"] == 2


def test_metric_set_specs_and_variants():
    df = synth_store(n=8, methods={"ig": 0.2, "sig": 0.5})
    name, ms = tab.resolve_metric_set("SIC=pic.sic:max,pic.aic", df)
    assert name == "custom" and ms == [("SIC", "pic.sic", "max"), ("pic.aic", "pic.aic", "max")]
    name, ms = tab.resolve_metric_set("insertion_deletion", df)
    assert ms == [("Ins", "insertion_deletion.rise_insertion", "max"), ("Del", "insertion_deletion.rise_deletion",
                                                                        "min")]
    name, ms = tab.resolve_metric_set("quantus", df)
    assert sorted(ms) == [("infidelity", "quantus_infidelity.quantus_infidelity", "min"),
                          ("pixel_flipping", "quantus_pixel_flipping.quantus_pixel_flipping", "min")]
    s = tab.summarize(df, "pic", n_boot=NB)
    assert (s["n"] < s["n_ok"]).all()  # images PIC skipped (NaN) do not count
    name, ms = tab.resolve_metric_set("pic", df)
    assert {m[1] for m in ms} == {"pic.sic", "pic.aic"}
    assert tab.resolve_metric_set("nothing_here", df)[1] == []
    assert tab.available_metric_sets(df) == ["diffid", "insertion_deletion", "pic", "completeness", "quantus", "cost"]
    with pytest.raises(ValueError):
        tab.resolve_metric_set("X=pic.sic:up", df)
    # two configs of one method on the same (dataset, model) -> two rows labelled with the hash
    other = df[df.method == "ig"].copy()
    other["method_hash"] = "zzzzzzz999"
    v = tab.with_variants(pd.concat([df, other]))
    assert {"ig[h00abcd]", "ig[zzzzzzz]", "sig"} <= set(v["variant"])


def test_write_tables_from_store_files(tmp_path):
    df = synth_store(datasets=("imagenet", "oxfordpet"), models=("resnet18", "vgg16"), n=16,
                     flagged={("imagenet", "resnet18", "ig"): {"skipped": 2}})
    write_store(df, tmp_path)
    paths = tab.write_tables(tmp_path, n_boot=NB)
    for name in ["table.md", "table.tex", "table.csv", "comparison.md", "comparison.csv",
                 "published_comparison.md", "published_comparison.csv"]:
        assert name in paths and paths[name].exists(), name
    csv = pd.read_csv(tmp_path / "table.csv")
    assert {"mean", "lo", "hi", "n", "n_ok", "n_flagged", "rank"} <= set(csv.columns)
    assert set(csv["dataset"]) == {"imagenet", "oxfordpet"}
    md = (tmp_path / "table.md").read_text()
    assert md.index("### imagenet — diffid") < md.index("### oxfordpet — diffid")
    assert "R18 14/2; VGG16 16/0" in md
    cmp = pd.read_csv(tmp_path / "comparison.csv")
    assert set(cmp["baseline"]) == {"ig"} and "ig" not in set(cmp["method"])
    assert cmp["p_holm"].between(0, 1).all() and (cmp["p_holm"] >= cmp["p_wilcoxon"] - 1e-12).all()
    best = cmp[(cmp.column == "diffid.diffid") & (cmp.method == "ma_gig")]
    assert (best["diff"] > 0).all()  # skill 0.9 vs 0.3


def test_cli(tmp_path, capsys):
    write_store(synth_store(n=10), tmp_path)
    rc = tab.main([str(tmp_path), "--metric-set", "diffid", "--new-method", "ma_gig", "--n-boot", "100",
                   "--no-published", "--print"])
    assert rc == 0 and "### imagenet — diffid" in capsys.readouterr().out
    cmp = pd.read_csv(tmp_path / "comparison.csv")
    assert set(cmp["method"]) == {"ma_gig"} and "ma_gig" not in set(cmp["baseline"])
    assert not (tmp_path / "published_comparison.md").exists()
    assert tab.main([str(tmp_path / "empty")]) == 1


def test_module_entry_point(tmp_path):
    """``python -m benchmarks.table`` as the Makefile calls it."""
    write_store(synth_store(n=4, models=("resnet18",), methods={"ig": 0.1, "sig": 0.5}), tmp_path)
    r = subprocess.run([sys.executable, "-m", "benchmarks.table", str(tmp_path), "--n-boot", "50"],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "table.md").exists() and (tmp_path / "comparison.md").exists()


# ------------------------------------------------------------------------------------------- published numbers
def test_published_csvs_load_and_map_names():
    p = pub.load_published()
    sig = p[p.source == "sig_kdd2026"]
    assert len(sig) == 90 and set(sig.method) == {"grad_input", "ig", "blur_ig", "eig", "mig", "guided_ig", "agi",
                                                  "ig2", "samp", "sig"}
    assert set(sig.model) == {"resnet18", "vgg16", "inception_v1"}
    cell = sig[(sig.method == "sig") & (sig.model == "resnet18") & (sig.metric == "diffid.diffid")].iloc[0]
    assert cell.value == pytest.approx(0.342) and cell.mark == "best"
    big = sig[(sig.method == "blur_ig") & (sig.model == "vgg16") & (sig.metric == "diffid.deletion")].iloc[0]
    assert big.value == pytest.approx(0.029) and big.mark == "best"
    pet = p[(p.source == "magig_icml2026") & (p.kind == "table")]
    assert len(pet) == 30
    # the transcription's internal check: DiffID = Ins - Del
    w = pet[pet.model == "resnet18"].pivot_table(index="method", columns="metric", values="value")
    np.testing.assert_allclose(w["diffid.diffid"], w["diffid.insertion"] - w["diffid.deletion"], atol=1.5e-4)
    assert pub.canonical_method("G×I") == "grad_input" and pub.canonical_method("IG²") == "ig2"
    assert pub.canonical_model("IncV1") == "inception_v1" and pub.canonical_model("resnet18.tv_in1k") == "resnet18"
    assert pub.canonical_dataset("oxford_iiit_pet") == "pet" and pub.canonical_dataset("oxfordflower") == "flowers102"


@pytest.mark.skipif(not pub.REFERENCE_MD.exists(), reason="docs/published.md not in this checkout")
def test_published_csvs_match_reference_md():
    for fname, frame in pub.parse_published_md().items():
        have = pub.read_csv(pub.PUBLISHED_DIR / fname)
        pd.testing.assert_frame_equal(have, frame, check_dtype=False)


def test_compare_with_published_deltas():
    ours = pd.DataFrame([
        dict(dataset="imagenet", model="resnet18", method="sig", variant="sig", column="diffid.diffid",
             mean=0.352, lo=0.345, hi=0.37, n=500),
        dict(dataset="oxford_pet", model="vgg16", method="ig", variant="ig", column="diffid.diffid",
             mean=0.50, lo=0.45, hi=0.53, n=370),
        dict(dataset="imagenet", model="resnet18", method="my_new", variant="my_new", column="diffid.diffid",
             mean=0.9, lo=0.8, hi=1.0, n=500),
    ])
    c = pub.compare_with_published(ours).set_index("method")
    assert set(c.index) == {"sig", "ig"}
    assert c.loc["sig", "published"] == pytest.approx(0.342) and c.loc["sig", "delta"] == pytest.approx(0.010)
    assert bool(c.loc["sig", "within_ci"]) is False
    assert c.loc["ig", "delta"] == pytest.approx(0.50 - 0.5255) and bool(c.loc["ig", "within_ci"]) is True
    md = pub.comparison_markdown(c.reset_index())
    assert "+0.0100" in md and "Mean |Δ| over 2 matched cells" in md


def _script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("compare_published", REPO / "scripts" / "compare_published.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_compare_published_script(tmp_path, capsys):
    script = _script()
    write_store(synth_store(n=6, methods={"ig": 0.3, "sig": 0.8}), tmp_path)
    assert script.main([str(tmp_path), "--n-boot", "50"]) == 0
    assert "Mean |Δ|" in capsys.readouterr().out
    c = pd.read_csv(tmp_path / "published_comparison.csv")
    assert set(c["method"]) == {"ig", "sig"} and set(c["model"]) == {"resnet18", "vgg16"}
    if pub.REFERENCE_MD.exists():
        assert script.main(["--parse", str(pub.REFERENCE_MD), "--published-dir", str(tmp_path / "pub")]) == 0
        assert sorted(p.name for p in (tmp_path / "pub").glob("*.csv")) == ["magig_pet.csv", "sig_imagenet.csv"]
        assert script.main(["--check", str(pub.REFERENCE_MD)]) == 0
        assert script.main(["--check", str(pub.REFERENCE_MD), "--published-dir", str(tmp_path / "none")]) == 1


# ------------------------------------------------------------------------------------------- command-line mistakes
def test_cli_typos_fail_listing_choices_and_write_nothing(tmp_path, capsys):
    write_store(synth_store(n=6, models=("resnet18",), methods={"ig": 0.1, "sig": 0.5}), tmp_path)
    assert tab.main([str(tmp_path), "--n-boot", "20", "--no-published"]) == 0
    before = {p.name: p.read_text() for p in tmp_path.glob("*.*")}
    capsys.readouterr()
    assert tab.main([str(tmp_path), "--metric-set", "difid", "--no-published"]) == 2
    err = capsys.readouterr().err
    assert "'difid'" in err and "diffid" in err and "insertion_deletion" in err
    assert tab.main([str(tmp_path), "--baseline", "igg", "--no-published"]) == 2
    err = capsys.readouterr().err
    assert "'igg'" in err and "'ig'" in err and "'sig'" in err
    assert tab.main([str(tmp_path), "--new-method", "sgi", "--no-published"]) == 2
    assert {p.name: p.read_text() for p in tmp_path.glob("*.*")} == before


def test_cli_baseline_none_removes_a_stale_comparison(tmp_path):
    write_store(synth_store(n=6, models=("resnet18",), methods={"ig": 0.1, "sig": 0.5}), tmp_path)
    assert tab.main([str(tmp_path), "--n-boot", "20", "--no-published"]) == 0
    assert (tmp_path / "comparison.md").exists()
    assert tab.main([str(tmp_path), "--n-boot", "20", "--no-published", "--baseline", "none"]) == 0
    assert not (tmp_path / "comparison.md").exists() and not (tmp_path / "comparison.csv").exists()


def test_two_configs_of_one_method_are_compared(tmp_path):
    df = synth_store(n=8, models=("resnet18",), methods={"ig": 0.1, "sig": 0.5})
    other = df[df.method == "ig"].copy()
    other["method_hash"] = "zzzzzzz999"
    df = pd.concat([df, other], ignore_index=True)
    t = tab.build_tables(df, ["diffid"], baseline="ig", n_boot=NB, published=False)
    assert not any("not in the store" in n for n in t.notes)
    assert set(t.comparison["baseline"]) == {"ig[h00abcd]", "ig[zzzzzzz]"}
    assert {"sig"} < set(t.comparison["method"])
    t = tab.build_tables(df, ["diffid"], new_method="ig", baseline=None, n_boot=NB, published=False)
    assert set(t.comparison["method"]) == {"ig[h00abcd]", "ig[zzzzzzz]"}
    assert tab.build_tables(df, ["diffid"], baseline="ig[zzzzzzz]", n_boot=NB, published=False).comparison[
        "baseline"].unique().tolist() == ["ig[zzzzzzz]"]


# ------------------------------------------------------------------------------------------- statistics that guard
def test_columns_that_do_not_separate_the_random_map_are_flagged_not_ranked():
    df = synth_store(n=40, models=("resnet18",))  # with the random map (skill -0.5)
    df["quantus_pixel_flipping.quantus_pixel_flipping"] = 0.25  # a perturbation that changes nothing
    s = tab.summarize(df, "quantus", n_boot=NB).set_index(["label", "method"])
    assert s.loc[("infidelity", "ig"), "flag"].startswith("no method scores better than the random map")
    assert s.loc[("pixel_flipping", "ig"), "flag"] == "every method scores the same"
    assert (s.loc["infidelity", "rank"] == 0).all() and (s.loc["pixel_flipping", "rank"] == 0).all()
    d = tab.summarize(df, "diffid", n_boot=NB)
    assert (d["flag"] == "").all() and (d["rank"] > 0).any()  # DiffID tells the methods from random
    md = tab.build_tables(df, ["quantus"], baseline=None, n_boot=NB, published=False).markdown()
    assert "infidelity↓ ⚠" in md and "⚠ R18 infidelity: no method scores better than the random map" in md
    assert "**" not in md.split("### ")[1].split("\n\n")[1]  # no best marked in a flagged column


def test_counts_per_metric_median_completeness_and_no_interval_on_seconds():
    df = synth_store(n=28, models=("resnet18",), methods={"ig": 0.3, "sig": 0.6})
    pic = tab.summarize(df, "pic", n_boot=NB)
    assert (pic["n"] < pic["n_ok"]).all()
    md = tab.build_tables(df, ["pic"], baseline=None, n_boot=NB, published=False).markdown()
    assert f"(n={int(pic['n'].iloc[0])})" in md  # the images PIC scored, beside the row's 28/0
    comp = tab.summarize(df, "completeness", n_boot=NB)
    row = comp[(comp.column == "completeness_error") & (comp.method == "ig")].iloc[0]
    assert row.statistic == "median"
    assert row["mean"] == pytest.approx(df.loc[df.method == "ig", "completeness_error"].median())
    assert row.lo <= row["mean"] <= row.hi
    cost = tab.summarize(df, "cost", n_boot=NB)
    assert cost["lo"].isna().all() and cost["hi"].isna().all() and cost["mean"].notna().all()
    small = tab.summarize(df[df.image_id.isin(sorted(set(df.image_id))[:6])], "diffid", n_boot=NB)
    assert small["lo"].isna().all()  # six images: no interval (n too small), not a fake one


def test_published_comparison_says_n_too_small_instead_of_not_in_ci():
    summary = pd.DataFrame([dict(dataset="imagenet", model="resnet18", variant="ig", method="ig", label="DiffID",
                                 column="diffid.diffid", metric_set="diffid", mean=0.3, lo=float("nan"),
                                 hi=float("nan"), n=6)])
    cmp = pub.compare_with_published(summary)
    if cmp.empty:
        pytest.skip("no published IG DiffID cell on ImageNet R18")
    assert cmp["within_ci"].isna().all()
    md = pub.comparison_markdown(cmp)
    assert "(n too small)" in md and "| no |" not in md


def test_a_metric_that_did_not_run_on_a_dataset_is_not_rendered_for_it():
    """Two datasets in one store, a metric scored on one only: the other's tables have no column (and no section)
    of dashes for it."""
    rows = []
    for dataset, scored in (("photos", False), ("mnist", True)):
        for method in ("ig", "sig"):
            for i in range(4):
                rows.append(dict(dataset=dataset, model="m", method=method, method_hash=f"{method}-h",
                                 image_id=f"{i}", status="ok", **{"diffid.diffid": 0.1 * i + (method == "ig"),
                                 "only_mnist.score": (0.2 * i if scored else float("nan"))}))
    df = pd.DataFrame(rows)
    s = tab.summarize(df, [("DiffID", "diffid.diffid", "max"), ("Only", "only_mnist.score", "max")])
    assert set(s[s["dataset"] == "photos"]["label"]) == {"DiffID"}
    assert set(s[s["dataset"] == "mnist"]["label"]) == {"DiffID", "Only"}
    only = tab.summarize(df, [("Only", "only_mnist.score", "max")])
    assert set(only["dataset"]) == {"mnist"}
    assert [lay.dataset for lay in tab.layouts(only, df)] == ["mnist"]
