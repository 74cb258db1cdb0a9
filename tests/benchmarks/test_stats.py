"""Statistics on synthetic data where the answer is known."""
import numpy as np
import pandas as pd
import pytest

from benchmarks.report.stats import bootstrap_ci, holm, paired_comparisons, paired_values, wilcoxon_p


def test_bootstrap_ci_mean_interval_and_determinism():
    rng = np.random.default_rng(0)
    x = rng.normal(0.3, 0.1, size=400)
    mean, lo, hi, n = bootstrap_ci(x, n_boot=2000, seed=0)
    assert n == 400 and mean == pytest.approx(x.mean())
    assert lo < mean < hi
    # percentile interval ~ mean ± 1.96 * s / sqrt(n)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.15)
    assert bootstrap_ci(x, n_boot=2000, seed=0) == (mean, lo, hi, n)  # seeded
    assert bootstrap_ci(x, n_boot=2000, seed=1)[1] != lo


def test_bootstrap_ci_edge_cases():
    m, lo, hi, n = bootstrap_ci([], n_boot=100)
    assert n == 0 and np.isnan(m) and np.isnan(lo) and np.isnan(hi)
    assert bootstrap_ci([0.5], n_boot=100) == (0.5, 0.5, 0.5, 1)
    assert bootstrap_ci([0.2, 0.2, 0.2]) == (pytest.approx(0.2), pytest.approx(0.2), pytest.approx(0.2), 3)
    m, lo, hi, n = bootstrap_ci([1.0, np.nan, 3.0, np.inf], n_boot=200)
    assert n == 2 and m == 2.0 and np.isnan(lo) and np.isnan(hi)  # n too small for an interval


def test_bootstrap_is_bca_from_scipy_and_says_when_n_is_too_small():
    from scipy import stats

    from benchmarks.report.stats import MIN_N

    x = np.random.default_rng(3).lognormal(0, 1, 30)  # skewed: BCa and percentile differ
    m, lo, hi, n = bootstrap_ci(x, n_boot=1000, seed=4)
    ref = stats.bootstrap((x,), np.mean, n_resamples=1000, method="BCa", rng=np.random.default_rng([4, 30]))
    assert (lo, hi) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high))
    pct = stats.bootstrap((x,), np.mean, n_resamples=1000, method="percentile", rng=np.random.default_rng([4, 30]))
    assert hi > pct.confidence_interval.high  # BCa shifts the interval towards the long tail
    small = bootstrap_ci(x[: MIN_N - 1])
    assert np.isfinite(small[0]) and np.isnan(small[1]) and np.isnan(small[2]) and small[3] == MIN_N - 1
    med = bootstrap_ci(x, n_boot=500, statistic="median")
    assert med[0] == pytest.approx(np.median(x)) and med[1] <= med[0] <= med[2]
    with pytest.raises(ValueError):
        bootstrap_ci(x, statistic="mode")


def test_wilcoxon_on_few_tied_differences_equals_scipys_permutation_test():
    """Up to 13 differences the p-value is the exact sign-flip distribution, ties and zeros included:
    equal to scipy's wilcoxon (a permutation test there) on every case."""
    from scipy import stats

    rng = np.random.default_rng(1)
    cases = [np.round(rng.normal(0.1, 0.3, int(rng.integers(2, 15))), 1) for _ in range(60)]
    cases += [np.array([0.1, 0.1, 0.1, -0.1, 0.0, 0.2]), np.array([1.0, 2.0, 3.0])]
    for d in cases:
        if np.all(d == 0):
            continue
        ref = stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue
        assert wilcoxon_p(d) == pytest.approx(ref, abs=1e-12), d


def test_wilcoxon_shift_and_no_shift():
    rng = np.random.default_rng(1)
    shifted = rng.normal(0.1, 0.05, size=100)
    assert wilcoxon_p(shifted) < 1e-10
    p_null = [wilcoxon_p(rng.normal(0.0, 0.05, size=100)) for _ in range(20)]
    assert np.median(p_null) > 0.2 and min(p_null) > 1e-3
    assert wilcoxon_p(np.zeros(10)) == 1.0
    assert np.isnan(wilcoxon_p([]))


def test_holm_against_hand_computation():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone max 0.06
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])
    out = holm([0.01, np.nan, 0.02])  # NaN does not count in m
    np.testing.assert_allclose(out[[0, 2]], [0.02, 0.02])
    assert np.isnan(out[1])
    assert holm([]).size == 0


def _frame(n=80, seed=0):
    """Methods on one (dataset, model): 'better' = base + 0.1, 'same' = base + symmetric noise."""
    rng = np.random.default_rng(seed)
    ids = [f"i{i}" for i in range(n)]
    base = rng.random(n)
    rows = []
    for method, vals in [("ig", base), ("better", base + 0.1 + rng.normal(0, 0.02, n)),
                         ("same", base + rng.normal(0, 0.02, n)), ("worse", base - 0.05 + rng.normal(0, 0.02, n))]:
        for i, v in zip(ids, vals):
            rows.append(dict(dataset="d", model="m", method=method, variant=method, image_id=i, status="ok",
                             **{"diffid.diffid": v, "diffid.deletion": -v}))
    return pd.DataFrame(rows)


def test_paired_comparisons_vs_baseline():
    df = _frame()
    metrics = [("DiffID", "diffid.diffid", "max"), ("Del", "diffid.deletion", "min")]
    res = paired_comparisons(df, metrics, baseline="ig", n_boot=500).set_index(["metric", "method"])
    assert set(res.index.get_level_values("method")) == {"better", "same", "worse"}
    b = res.loc[("DiffID", "better")]
    assert b["diff"] == pytest.approx(0.1, abs=0.01) and b.diff_lo > 0.09 and b.diff_hi < 0.11
    assert b.p_wilcoxon < 1e-10 and b.verdict == "better" and b.win_rate == 1.0 and b.n_pairs == 80
    assert res.loc[("DiffID", "same")].verdict == "n.s." and res.loc[("DiffID", "same")].p_holm > 0.05
    assert res.loc[("DiffID", "worse")].verdict == "worse"
    # Del: lower is better, so a negative difference is "better"
    assert res.loc[("Del", "better")]["diff"] < 0 and res.loc[("Del", "better")].verdict == "better"
    # Holm within each metric's family
    fam = res.loc["DiffID"]
    np.testing.assert_allclose(fam["p_holm"], holm(fam["p_wilcoxon"].to_numpy()))


def test_paired_comparisons_new_method_and_pairing():
    df = _frame()
    # drop some ids of the baseline and flag one of 'better': pairs are the common ok ids only
    df = df[~((df.method == "same") & df.image_id.isin(["i0", "i1", "i2"]))]
    df.loc[(df.method == "better") & (df.image_id == "i5"), "status"] = "bad_model_output"
    res = paired_comparisons(df, [("DiffID", "diffid.diffid", "max")], new_method="better", n_boot=300)
    assert set(res["baseline"]) == {"ig", "same", "worse"} and set(res["method"]) == {"better"}
    r = res.set_index("baseline")
    assert r.loc["ig", "n_pairs"] == 79 and r.loc["same", "n_pairs"] == 76
    assert (r["verdict"] == "better").all()
    pv = paired_values(df, "diffid.diffid", "better", "same")
    assert len(pv) == 76 and "i5" not in set(pv["id"])


def test_paired_comparisons_requires_one_anchor():
    with pytest.raises(ValueError):
        paired_comparisons(_frame(), [], baseline="ig", new_method="x")
    assert paired_comparisons(_frame(), [("D", "diffid.diffid", "max")], baseline="absent").empty


def test_win_rate_counts_ties_apart_and_no_row_without_pairs():
    rows = []
    for i in range(20):
        rows.append(dict(dataset="d", model="m", variant="ig", method="ig", image_id=f"i{i}", status="ok", v=0.5))
        # better on half of the images, tied on the other half
        rows.append(dict(dataset="d", model="m", variant="new", method="new", image_id=f"i{i}", status="ok",
                         v=0.5 + (0.1 if i % 2 else 0.0)))
        rows.append(dict(dataset="d", model="m", variant="elsewhere", method="elsewhere", image_id=f"x{i}",
                         status="ok", v=0.9))
    res = paired_comparisons(pd.DataFrame(rows), [("V", "v", "max")], baseline="ig", n_boot=200)
    assert list(res["method"]) == ["new"]  # 'elsewhere' shares no image with ig: no row of NaNs
    r = res.iloc[0]
    assert r.win_rate == 1.0 and r.tie_rate == 0.5
