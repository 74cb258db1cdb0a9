"""W&B logging, offline: read back what W&B wrote; failures warn and lose nothing."""
import json

import numpy as np
import pytest
from synth_store import synth_store

wandb = pytest.importorskip("wandb")

from benchmarks.report.wandb_log import WandbLogger, offline_runs, read_offline_run, read_table  # noqa: E402

CFG = {"dataset": {"name": "imagenet"}, "model": {"name": "resnet18"},
       "method": {"name": "ig", "n_steps": 200, "baseline": "black"}, "seed": 0}


@pytest.fixture(autouse=True)
def _wandb_env(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def _rows(n=12):
    return synth_store(models=("resnet18",), methods={"ig": 0.3}, n=n,
                       flagged={("imagenet", "resnet18", "ig"): {"skipped": 2}})


def test_offline_run_holds_config_summary_table_images_curves(tmp_path):
    df = _rows()
    lg = WandbLogger(CFG, mode="offline", project="bench", group="sweep-a", dir=tmp_path, name="imagenet/r18/ig")
    for i in range(0, len(df), 4):  # per batch, as the runner does
        lg.log_rows(df.iloc[i:i + 4].to_dict("records"))
    lg.log_images("attributions", [np.random.default_rng(0).random((3, 8, 8))], captions=["im0"])
    lg.finish(df)
    assert lg.failures == [] and lg.run is None

    runs = offline_runs(tmp_path)
    assert len(runs) == 1
    r = read_offline_run(runs[0])
    assert r["finished"] and r["project"] == "bench" and r["group"] == "sweep-a"
    assert r["config"]["method"] == CFG["method"] and r["config"]["seed"] == 0
    s = r["summary"]
    ok = df[df.status == "ok"]
    assert s["n_images"] == 12 and s["n_ok"] == 10 and s["n_skipped"] == 2
    assert s["diffid.diffid"] == pytest.approx(ok["diffid.diffid"].mean())
    assert s["diffid.insertion_curve_auc/ig"] > 0
    assert any("batch/diffid.diffid" in h for h in r["history"])
    assert max(h.get("progress/images", 0) for h in r["history"]) == 12

    table = read_table(runs[0], "per_image")
    assert len(table) == 12 and list(table["image_id"]) == list(df["image_id"])
    assert "diffid.insertion_curve" not in table.columns
    np.testing.assert_allclose(table["diffid.diffid"].astype(float), df["diffid.diffid"], equal_nan=True)
    assert any(f.startswith("media/images/attributions") for f in r["files"])
    curve = read_table(runs[0], "diffid/insertion_curve_table")
    assert len(curve) == 9 and set(curve["lineKey"]) == {"ig"}  # one line, 9 ratios


def test_sweep_jobs_are_separate_runs_in_one_group(tmp_path):
    for method in ("ig", "sig"):
        with WandbLogger({**CFG, "method": {"name": method}}, mode="offline", project="bench", group="grid-1",
                         dir=tmp_path) as lg:
            lg.log_summary({"diffid.diffid": 0.1 if method == "ig" else 0.3})
    runs = [read_offline_run(p) for p in offline_runs(tmp_path)]
    assert len(runs) == 2 and {r["group"] for r in runs} == {"grid-1"}
    assert sorted(r["summary"]["diffid.diffid"] for r in runs) == [0.1, 0.3]
    assert len({r["run_id"] for r in runs}) == 2


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


def test_log_failing_mid_run_keeps_going(tmp_path, monkeypatch):
    df = _rows(8)
    lg = WandbLogger(CFG, mode="offline", project="bench", group="g", dir=tmp_path)
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
    r = read_offline_run(offline_runs(tmp_path)[0])
    assert r["finished"] and r["summary"]["before"] == 1 and r["summary"]["n_images"] == 8


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
