"""Metric agreement (Kendall tau between metrics, median-rank summary) and the comparisons against every baseline."""
import numpy as np
import pandas as pd
import pytest
from synth_store import synth_store

from benchmarks.report import agreement as ag
from benchmarks.report.baselines import every_baseline
from benchmarks.report.stats import paired_comparisons
from benchmarks.report.table import with_variants


def _summary(scores: dict[str, tuple[str, list[float]]], flag: dict | None = None) -> pd.DataFrame:
    """A summary of one (dataset, model): {column: (direction, means of methods a, b, c, d)}."""
    rows = []
    for col, (direction, means) in scores.items():
        for v, x in zip("abcd", means):
            rows.append(dict(dataset="ds", model="m", method=v, variant=v, metric_set=col.split(".")[0],
                             label=col.split(".")[1], column=col, direction=direction, mean=x,
                             flag=(flag or {}).get(col, "")))
    rows += [dict(dataset="ds", model="m", method=v, variant=v, metric_set="cost", label="s/img", column="seconds",
                  direction="min", mean=1.0 + i, flag="") for i, v in enumerate("abcd")]
    return pd.DataFrame(rows)


def test_kendall_tau_oriented_by_direction_and_median_rank():
    s = _summary({"x.up": ("max", [4, 3, 2, 1]),       # a > b > c > d
                  "y.down": ("max", [1, 2, 3, 4]),     # reversed
                  "z.err": ("min", [1, 2, 3, 4]),      # lower is better: the same order as x
                  "w.half": ("max", [4, 3, 1, 2])})    # one swap at the bottom
    tau = ag.kendall(s).set_index(["column_a", "column_b"])["tau"]
    assert tau[("x.up", "y.down")] == pytest.approx(-1)
    assert tau[("x.up", "z.err")] == pytest.approx(1)
    assert tau[("x.up", "w.half")] == pytest.approx(4 / 6)  # 5 concordant, 1 discordant of 6 pairs
    assert "seconds" not in set(ag.kendall(s)["column_a"]) | set(ag.kendall(s)["column_b"])
    r = ag.summary_ranking(s).set_index("variant")
    # ranks of a under x, y, z, w: 1, 4, 1, 1 -> median 1, worst 4; of d: 4, 1, 4, 3 -> median 3.5
    assert r.loc["a", "median_rank"] == 1 and r.loc["a", "worst_rank"] == 4 and r.loc["a", "best_rank"] == 1
    assert r.loc["d", "median_rank"] == 3.5 and r.loc["d", "q1_rank"] == 2.5 and r.loc["d", "n_metrics"] == 4
    assert list(r.index) == ["a", "b", "c", "d"]  # sorted by median rank


def test_flagged_metrics_and_completeness_stay_out_of_the_ranking_not_the_taus():
    s = _summary({"x.up": ("max", [4, 3, 2, 1]), "y.down": ("max", [1, 2, 3, 4]),
                  "completeness.err": ("min", [4, 3, 2, 1])}, flag={"y.down": "no method beats random"})
    r = ag.summary_ranking(s).set_index("variant")
    assert (r["n_metrics"] == 1).all() and r.loc["a", "median_rank"] == 1  # x alone
    assert len(ag.kendall(s)) == 3


def test_agreement_files(tmp_path):
    s = _summary({"x.up": ("max", [4, 3, 2, 1]), "y.down": ("max", [1, 2, 3, 4])})
    paths = ag.write_agreement(s, tmp_path)
    assert sorted(paths) == ["agreement.csv", "agreement.md", "agreement_ranking.csv"]
    md = (tmp_path / "agreement.md").read_text()
    assert "| Kendall τ | up | down |" in md and "| up | 1 | -1.00 |" in md
    assert pd.read_csv(tmp_path / "agreement.csv")["tau"].tolist() == [-1.0]
    assert ag.write_agreement(s[s["variant"].isin(["a", "b"])], tmp_path) == {}  # 2 methods: nothing, none stale
    assert not (tmp_path / "agreement.md").exists()


def test_every_baseline_equals_paired_comparisons_for_each():
    df = with_variants(synth_store(models=("resnet18",), n=20, with_curves=False,
                                   methods={"ig": 0.2, "guided_ig": 0.5, "sig": 0.4, "random": -0.5},
                                   flagged={("imagenet", "resnet18", "sig"): {"skipped": 3}}))
    metrics = [("DiffID", "diffid.diffid", "max"), ("Del", "diffid.deletion", "min")]
    every = every_baseline(df, metrics, n_boot=300)
    key = ["dataset", "model", "column", "method", "baseline"]
    for b in ("ig", "guided_ig", "sig", "random"):
        want = paired_comparisons(df, metrics, baseline=b, n_boot=300).set_index(key).sort_index()
        got = every[every["baseline"] == b].set_index(key).sort_index()
        assert list(got.index) == list(want.index)
        for c in ("n_pairs", "mean_method", "mean_baseline", "diff", "diff_lo", "diff_hi", "p_wilcoxon", "p_holm",
                  "win_rate", "tie_rate"):
            np.testing.assert_allclose(got[c].astype(float), want[c].astype(float), rtol=1e-9, atol=1e-12,
                                       equal_nan=True, err_msg=f"baseline {b}: {c}")
        assert list(got["verdict"]) == list(want["verdict"])
