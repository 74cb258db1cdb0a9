"""Variants (methods under modifiers) through the runner: each is its own method in the store, the cache and the
tables, with a readable label; Expected Gradients gets the runner's reference bank; a plain method keeps its hash
when the modifier keys are spelled at their neutral values; a combination that makes no sense fails before work."""
from __future__ import annotations

import pytest
from test_run import base_overrides, compose, run_inproc, write_conf

from attribution import ConfigError
from benchmarks import run as runner
from benchmarks.io.store import load_store
from benchmarks.report.table import main as table_main

VARIANTS = {  # variant name -> overrides on top of method=t_ig (IG, 6 points)
    "ig": [],
    "ig+idgi": ["+method.integration=idgi"],
    "ig+eg": ["method.baseline=expected", "+method.n_samples=3", "reference_bank=4"],
    "ig+trapezoid": ["+method.rule=trapezoid"],
    "ig+sg": ["noise=smoothgrad", "noise.samples=2"],
    "ig+xrai": ["post=xrai"],
}


def test_each_variant_is_its_own_method_in_the_store_cache_and_tables(tmp_path, capsys):
    conf, out = write_conf(tmp_path), tmp_path / "out"
    for extra in VARIANTS.values():
        run_inproc(base_overrides(conf, out, *extra))
    df = load_store(out)
    assert set(df["method"]) == set(VARIANTS)
    assert (df.groupby("method").size() == 6).all()
    assert df.groupby("method")["method_hash"].nunique().eq(1).all() and df["method_hash"].nunique() == len(VARIANTS)
    cached = {d.name.split("-")[0] for d in (out / "cache" / "tiny" / "tinynet").iterdir()}
    assert cached == set(VARIANTS)
    ok = df[df.status == "ok"].set_index("method")
    assert (ok.loc["ig+idgi", "completeness_error"] < 1e-5).all()  # IDGI is complete; the 6-point IG is not
    assert (ok.loc["ig", "completeness_error"] > 1e-4).any()
    assert (ok.loc["ig+eg", "passes_fb"] == 3).all() and (ok.loc["ig+sg", "passes_fb"] == 10).all()
    assert table_main([str(out), "--baseline", "ig+idgi", "--n-boot", "50", "--no-published"]) == 0
    table = (out / "table.md").read_text()
    for label in ("IG + IDGI", "IG + EG", "IG (trapezoid)", "IG (SG)", "IG + XRAI"):
        assert f"| {label} |" in table, label
    comparison = (out / "comparison.md").read_text()
    assert "### tiny — IG + IDGI (vs baseline)" in comparison
    assert "| tinynet | completeness_error↓ | IG | IG + IDGI |" in comparison  # the plain method against its variant


def test_neutral_modifier_keys_keep_the_plain_methods_hash(tmp_path):
    from omegaconf import OmegaConf

    conf, out = write_conf(tmp_path), tmp_path / "out"

    def setup(*extra):
        ov = base_overrides(conf, out, *extra)
        return runner.plan(OmegaConf.to_container(compose(ov), resolve=True), ov)

    plain = setup()
    spelled = setup("+method.integration=path", "+method.rule=left", "+method.spacing=uniform",
                    "+method.n_samples=99", "+method.seed=5")  # EG's keys do nothing without baseline=expected
    assert plain.method_name == spelled.method_name == "ig" and plain.method_hash == spelled.method_hash
    assert setup("method.baseline=expected", "+method.n_samples=3").needs_bank
    assert setup("+method.integration=idgi").method_hash != plain.method_hash


@pytest.mark.parametrize("extra,match", [
    (["method=t_gi", "+method.integration=idgi"], "integration"),
    (["+method.rule=middle", "+method.integration=idgi"], "rule='left' only"),
    (["+method.rule=simpson"], "rule"),
    (["noise=smoothgrad", "noise.sigma=-1"], "noise.sigma"),
    (["post=xrai", "post.algorithm=slow"], "post.algorithm"),
])
def test_a_combination_that_makes_no_sense_fails_before_work(tmp_path, extra, match):
    conf, out = write_conf(tmp_path), tmp_path / "out"
    with pytest.raises((ConfigError, ValueError, TypeError), match=match):
        run_inproc(base_overrides(conf, out, *extra))
    assert not (out / "store").exists()
