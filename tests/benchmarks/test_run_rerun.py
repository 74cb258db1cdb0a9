"""A metric that re-runs the method (needs_method) goes through benchmarks.run: the runner hands it the run's
method, and its per-image values land in the store beside the other metrics'."""
from test_run import base_overrides, run_inproc, write_conf

from benchmarks.io.store import load_store


def test_sanity_and_robustness_metrics_run_through_the_runner(tmp_path):
    conf = write_conf(tmp_path)
    out = tmp_path / "out"
    run_inproc(base_overrides(conf, out, "+metrics.mprt={skip_layers: true}",
                              "+metrics.max_sensitivity={nr_samples: 2}"))
    df = load_store(out)
    assert len(df) == 6 and (df["status"] == "ok").all()
    for col in ("mprt.mprt", "mprt.mprt_average", "max_sensitivity.max_sensitivity"):
        assert df[col].notna().all(), col
    assert df["mprt.mprt"].between(-1, 1).all() and (df["max_sensitivity.max_sensitivity"] > 0).all()
    # a re-run re-scores from the store: nothing new, the values kept
    again = run_inproc(base_overrides(conf, out, "+metrics.mprt={skip_layers: true}",
                                      "+metrics.max_sensitivity={nr_samples: 2}"))
    assert again.evaluated == 0 and load_store(out)["mprt.mprt"].equals(df["mprt.mprt"])
