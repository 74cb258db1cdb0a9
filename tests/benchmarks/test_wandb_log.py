"""W&B logging, offline: read back what W&B wrote (its media files: tables, Plotly figures, images) and what its
public ``Run`` held when closed (config, summary, group); failures warn and lose nothing."""
import json

import numpy as np
import pandas as pd
import pytest
from synth_store import synth_store, write_store

wandb = pytest.importorskip("wandb")

from benchmarks.report.wandb_log import (  # noqa: E402
    WandbLogger,
    logged,
    offline_runs,
    read_plotly,
    read_table,
    report_to_wandb,
)

CFG = {"dataset": {"name": "imagenet"}, "model": {"name": "resnet18"},
       "method": {"name": "ig", "n_steps": 200, "baseline": "black"}, "seed": 0}


@pytest.fixture(autouse=True)
def _wandb_env(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


@pytest.fixture
def closed(monkeypatch):
    """{run id: what the run held when it was closed}, through W&B's public ``Run`` (config, summary, group,
    project): W&B's offline mode keeps these only in its binary log, which nothing here parses."""
    seen = {}
    real = wandb.Run.finish

    def finish(self, *a, **k):
        summary = {key: self.summary[key] for key in self.summary.keys()}
        seen[self.id] = dict(config=dict(self.config), group=self.group, project=self.project,
                             summary={key: v for key, v in summary.items() if isinstance(v, (int, float, str))})
        return real(self, *a, **k)

    monkeypatch.setattr(wandb.Run, "finish", finish)
    return seen


def _rows(n=12):
    return synth_store(models=("resnet18",), methods={"ig": 0.3}, n=n,
                       flagged={("imagenet", "resnet18", "ig"): {"skipped": 2}})


def test_offline_run_holds_config_summary_tables_charts_images_curves(tmp_path, closed):
    from benchmarks.report.table import build_tables

    df = _rows()
    lg = WandbLogger(CFG, mode="offline", project="bench", group="sweep-a", dir=tmp_path, name="imagenet/r18/ig")
    run_id = lg.run.id
    for i in range(0, len(df), 4):  # per batch, as the runner does
        lg.log_rows(df.iloc[i:i + 4].to_dict("records"))
    lg.log_images("attributions", [np.random.default_rng(0).random((3, 8, 8))], captions=["im0"])
    lg.finish(df)
    assert lg.failures == [] and lg.run is None

    runs = offline_runs(tmp_path)
    assert len(runs) == 1 and lg.saved_to == runs[0] and (runs[0] / f"run-{run_id}.wandb").exists()
    r = closed[run_id]
    assert r["project"] == "bench" and r["group"] == "sweep-a"
    assert r["config"]["method"] == CFG["method"] and r["config"]["seed"] == 0
    s = r["summary"]
    ok = df[df.status == "ok"]
    assert s["n_images"] == 12 and s["n_ok"] == 10 and s["n_skipped"] == 2
    assert s["diffid.diffid"] == pytest.approx(ok["diffid.diffid"].mean())
    assert s["diffid.insertion_curve_auc/ig"] > 0
    assert s["progress/images"] == 12  # the last batch's history values
    assert s["batch/diffid.diffid"] == pytest.approx(df.iloc[8:12].query("status == 'ok'")["diffid.diffid"].mean())

    table = read_table(runs[0], "per_image")
    assert len(table) == 12 and list(table["image_id"]) == list(df["image_id"])
    assert "diffid.insertion_curve" not in table.columns
    np.testing.assert_allclose(table["diffid.diffid"].astype(float), df["diffid.diffid"], equal_nan=True)
    # the job's leaderboard: the rows table.csv holds for it, and W&B's bar chart of its means
    board = read_table(runs[0], "leaderboard")
    want = build_tables(df, baseline=None, published=False).summary
    assert list(board["column"]) == list(want["column"])
    np.testing.assert_allclose(board["mean"].astype(float), want["mean"], rtol=1e-12)
    np.testing.assert_allclose(board["lo"].astype(float), want["lo"], rtol=1e-12, equal_nan=True)
    chart = read_table(runs[0], "leaderboard_chart_table")
    dd = chart.set_index("metric")["mean"]
    assert dd["diffid.diffid"] == pytest.approx(ok["diffid.diffid"].mean()) and "seconds" not in dd.index
    assert list((runs[0] / "files" / "media" / "images").glob("attributions*.png"))
    curve = read_table(runs[0], "diffid/insertion_curve_table")
    assert len(curve) == 9 and set(curve["lineKey"]) == {"ig"}  # one line, 9 ratios
    assert {"per_image", "leaderboard", "leaderboard_chart_table"} <= set(logged(runs[0], "table"))


def test_sweep_jobs_are_separate_runs_in_one_group(tmp_path, closed):
    for method in ("ig", "sig"):
        with WandbLogger({**CFG, "method": {"name": method}}, mode="offline", project="bench", group="grid-1",
                         dir=tmp_path) as lg:
            lg.log_summary({"diffid.diffid": 0.1 if method == "ig" else 0.3})
    assert len(offline_runs(tmp_path)) == 2 and len(closed) == 2  # two runs, two ids
    assert {r["group"] for r in closed.values()} == {"grid-1"}
    assert sorted(r["summary"]["diffid.diffid"] for r in closed.values()) == [0.1, 0.3]
    assert sorted(r["config"]["method"]["name"] for r in closed.values()) == ["ig", "sig"]


def test_experiment_report_in_wandb_tables_and_panels(tmp_path, closed):
    """``report_to_wandb``: the report's numbers in W&B's tables (leaderboard = table.csv, comparison =
    comparison.csv, agreement = agreement.csv) and its charts as W&B bar charts and Plotly figures."""
    from benchmarks.report.table import write_tables

    out = tmp_path / "exp"
    df = synth_store(models=("resnet18",), n=16, methods={"ig": 0.2, "guided_ig": 0.5, "random": -0.5},
                     with_curves=False)
    write_store(df, out)
    write_tables(out, n_boot=200, published=False)
    lg = report_to_wandb(out, mode="offline", project="bench", group="exp", dir=tmp_path, n_boot=200)
    assert lg.failures == []
    [run] = offline_runs(tmp_path)
    assert list(closed.values())[0]["group"] == "exp"
    table = pd.read_csv(out / "table.csv")
    board = read_table(run, "leaderboard")
    assert list(board["column"]) == list(table["column"]) and list(board["variant"]) == list(table["variant"])
    np.testing.assert_allclose(board["mean"].astype(float), table["mean"], rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(board["hi"].astype(float), table["hi"], rtol=1e-12, equal_nan=True)
    cmp, cmp_csv = read_table(run, "comparison"), pd.read_csv(out / "comparison.csv")
    assert set(cmp["baseline"]) == {"ig"} and len(cmp) == len(cmp_csv)
    np.testing.assert_allclose(cmp["diff"].astype(float), cmp_csv["diff"], rtol=1e-12)
    assert list(read_table(run, "comparison")["verdict"]) == list(cmp_csv["verdict"])
    agree = read_table(run, "agreement")
    np.testing.assert_allclose(agree["tau"].astype(float), pd.read_csv(out / "agreement.csv")["tau"], rtol=1e-12)
    assert list(read_table(run, "ranking")["variant"]) == list(pd.read_csv(out / "agreement_ranking.csv")["variant"])
    assert len(read_table(run, "per_image")) == len(df)
    # the charts: per metric a W&B bar chart of the means, and the report's Plotly figures with its numbers
    key = "imagenet/resnet18/diffid.diffid"
    want = table[table["column"] == "diffid.diffid"].set_index("variant")["mean"]
    bar = read_table(run, f"bar/{key}_table").set_index("method")["mean"]
    assert bar.to_dict() == pytest.approx({"IG": want["ig"], "GIG": want["guided_ig"], "Random": want["random"]})
    fig = read_plotly(run, f"leaderboard/{key}")
    assert sorted(fig["data"][0]["x"]) == pytest.approx(sorted(want))
    forest = read_plotly(run, f"forest/{key}")
    c = cmp_csv[cmp_csv["column"] == "diffid.diffid"]
    assert sorted(forest["data"][0]["x"]) == pytest.approx(sorted(c["diff"]))
    heat = read_plotly(run, "agreement/imagenet/resnet18")
    assert heat["data"][0]["type"] == "heatmap"
    plots = logged(run, "plotly")
    assert sum(p.startswith("leaderboard/") for p in plots) == int(table["mean"].notna().groupby(
        table["column"]).any().drop(["seconds", "passes_fb", "passes_f"], errors="ignore").sum())


def test_disabled_mode_writes_nothing(tmp_path):
    lg = WandbLogger(CFG, mode="disabled", dir=tmp_path)
    lg.log_rows(_rows(4))
    lg.log_summary({"a": 1})
    lg.finish(_rows(4))
    assert not (tmp_path / "wandb").exists() and lg.failures == []
    with pytest.raises(ValueError):
        WandbLogger(CFG, mode="sometimes")


def test_init_failure_warns_and_records(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("no network, no luck")

    monkeypatch.setattr(wandb, "init", boom)
    with pytest.warns(RuntimeWarning, match="W&B init failed"):
        lg = WandbLogger(CFG, mode="online", dir=tmp_path)
    assert not lg.active
    df = _rows(6)
    with pytest.warns(RuntimeWarning):
        lg.log_rows(df)
        lg.log_summary({"diffid.diffid": 0.25})
    with pytest.warns(RuntimeWarning, match="W&B finish failed"):
        lg.finish(df)  # no exception
    ops = [f["op"] for f in lg.failures]
    assert ops[0] == "init" and "log_summary" in ops and "finish" in ops
    lines = [json.loads(x) for x in (tmp_path / "wandb_not_logged.jsonl").read_text().splitlines()]
    assert lines[0]["config"]["method"]["name"] == "ig"
    assert any(x.get("summary") == {"diffid.diffid": 0.25} for x in lines)  # the summary is kept in full


def test_log_failing_mid_run_keeps_going(tmp_path, monkeypatch, closed):
    df = _rows(8)
    lg = WandbLogger(CFG, mode="offline", project="bench", group="g", dir=tmp_path)
    run_id = lg.run.id
    lg.log_summary({"before": 1})

    def broken_log(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(lg.run, "log", broken_log)
    with pytest.warns(RuntimeWarning, match="W&B log_rows failed"):
        lg.log_rows(df)
    with pytest.warns(RuntimeWarning, match="W&B log_images failed"):
        lg.log_images("x", [np.zeros((4, 4))])
    with pytest.warns(RuntimeWarning, match="W&B log_curves failed"):
        lg.finish(df)  # table/curves fail again, summary and finish succeed
    assert lg.run is None
    assert {"log_rows", "log_images", "log_curves"} <= {f["op"] for f in lg.failures}
    recs = [json.loads(x) for x in (tmp_path / "wandb_not_logged.jsonl").read_text().splitlines()]
    assert any(r["op"] == "log_rows" and r.get("rows") == 8 for r in recs)
    [run] = offline_runs(tmp_path)
    assert (run / f"run-{run_id}.wandb").exists()  # closed in order, with what still worked
    assert closed[run_id]["summary"]["before"] == 1 and closed[run_id]["summary"]["n_images"] == 8


# ------------------------------------------------------------------------------ the runner's W&B, as users set it
def test_wandb_env_vars_apply_where_the_config_leaves_them_open(tmp_path, monkeypatch):
    from benchmarks.report.wandb_log import mode_from_env

    monkeypatch.setenv("WANDB_MODE", "dryrun")
    assert mode_from_env() == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert mode_from_env() == "disabled"
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_PROJECT", "from-env")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    lg = WandbLogger(CFG, mode=None, project=None, out_dir=tmp_path / "out")
    assert lg.mode == "offline" and lg.run.project == "from-env"
    lg.finish()
    assert offline_runs(tmp_path / "wb") and lg.saved_to == offline_runs(tmp_path / "wb")[0]


def test_runner_honours_wandb_mode_logs_maps_and_says_how_to_sync(tmp_path, caplog):
    """``WANDB_MODE=offline python -m benchmarks.run logger=wandb``: the config's mode is left to W&B's variable
    (it was hard-coded online), the job's first attribution maps are logged as W&B images, and the run says where
    the offline run is and how to upload it. Read back from the files W&B writes (media and table JSON)."""
    import logging
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_run import base_overrides, run_inproc, write_conf

    from benchmarks.run.config import compose_config

    assert compose_config(["logger=wandb"])["logger"]["mode"] is None
    conf = write_conf(tmp_path)
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO, logger="benchmarks.run"):
        run_inproc([*base_overrides(conf, out), "logger=wandb", "logger.log_maps=3"])
    [run_dir] = offline_runs(tmp_path)  # WANDB_DIR (set by the fixture) takes W&B's files
    said = caplog.text
    assert f"wandb sync {run_dir}" in said
    images = sorted((run_dir / "files" / "media" / "images").glob("attributions*.png"))
    assert len(images) == 3
    table = read_table(run_dir, "per_image")
    assert len(table) == 6


def test_runner_with_wandb_logs_the_report_as_a_run_of_its_own(tmp_path, closed):
    """``logger=wandb`` on a job that writes its tables: besides the job's run, one run of job type report holds
    the leaderboard (= table.csv) in the logger's group."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_run import base_overrides, run_inproc, write_conf

    conf = write_conf(tmp_path)
    out = tmp_path / "out"
    ov = [o for o in base_overrides(conf, out) if o != "write_tables=false"]
    run_inproc([*ov, "logger=wandb", "logger.group=grp", "logger.log_maps=0"])
    runs = offline_runs(tmp_path)
    assert len(runs) == 2 and {c["group"] for c in closed.values()} == {"grp"}
    [report_id] = [i for i, c in closed.items() if "baseline" in c["config"]]  # the report run's own config
    [report] = [r for r in runs if r.name.endswith(report_id)]
    board, table = read_table(report, "leaderboard"), pd.read_csv(out / "table.csv")
    np.testing.assert_allclose(board["mean"].astype(float), table["mean"], rtol=1e-12, equal_nan=True)
