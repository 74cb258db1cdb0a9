"""W&B unreachable, missing, or failing in the middle of a run: the results store is still written in full, and the
run says what was not logged (a warning per failing operation, and ``<out_dir>/wandb_not_logged.jsonl``)."""
from __future__ import annotations

import json
import sys

import pytest
from fault_helpers import base_overrides, run_inproc, write_conf

from benchmarks.io.store import load_store

wandb = pytest.importorskip("wandb")


class _FlakyRun:
    """A W&B run whose ``log`` works ``ok_calls`` times, then raises as a dropped connection does."""

    def __init__(self, ok_calls: int):
        self.ok_calls, self.logged, self.summary, self.finished = ok_calls, [], {}, None
        self.dir = "/nonexistent/files"

    def log(self, data, step=None):
        if len(self.logged) >= self.ok_calls:
            raise ConnectionError("wandb backend unreachable (simulated)")
        self.logged.append(data)

    def finish(self, exit_code=0):
        self.finished = exit_code


def _run(tmp_path, best_effort=True):
    conf = write_conf(tmp_path)
    out = tmp_path / "out"
    res = run_inproc([*base_overrides(conf, out), "logger=wandb", "logger.mode=offline",
                      f"logger.best_effort={str(best_effort).lower()}"])
    return res, load_store(out), out


def _said(rec) -> str:
    return "\n".join(str(w.message) for w in rec)


def _not_logged(out):
    return [json.loads(line) for line in (out / "wandb_not_logged.jsonl").read_text().splitlines()]


def test_wandb_unreachable_at_start(tmp_path, monkeypatch):
    def refuse(**kw):
        raise ConnectionError("Could not reach api.wandb.ai (simulated)")

    monkeypatch.setattr(wandb, "init", refuse)
    with pytest.warns(RuntimeWarning) as rec:
        res, df, out = _run(tmp_path)
    said = _said(rec)
    assert "W&B init failed (ConnectionError: Could not reach api.wandb.ai" in said
    assert "W&B log_rows failed" in said and "W&B finish failed" in said
    assert "results are kept in the store" in said and str(out / "wandb_not_logged.jsonl") in said
    assert res.evaluated == 6 and len(df) == 6 and (df["status"] == "ok").all()
    recs = _not_logged(out)
    ops = [r["op"] for r in recs]
    assert ops[0] == "init" and "api.wandb.ai" in recs[0]["error"] and recs[0]["config"]["seed"] == 0
    assert "log_rows" in ops and "finish" in ops  # every later call is recorded, with what it carried
    assert sum(r.get("rows", 0) for r in recs if r["op"] == "log_rows") == 6


def test_wandb_not_installed(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    with pytest.warns(RuntimeWarning) as rec:
        _, df, out = _run(tmp_path)
    assert "W&B init failed (ModuleNotFoundError" in _said(rec)
    assert len(df) == 6 and _not_logged(out)[0]["op"] == "init"


def test_wandb_fails_mid_run(tmp_path, monkeypatch):
    runs = []

    def flaky_init(**kw):
        runs.append(_FlakyRun(ok_calls=1))
        return runs[-1]

    monkeypatch.setattr(wandb, "init", flaky_init)
    with pytest.warns(RuntimeWarning) as rec:
        res, df, out = _run(tmp_path)
    assert "W&B log_rows failed (ConnectionError: wandb backend unreachable" in _said(rec)
    assert res.evaluated == 6 and len(df) == 6  # the store has everything
    run = runs[0]
    assert len(run.logged) == 1 and run.finished == 0  # first batch logged, then the connection dropped
    recs = _not_logged(out)
    failed_batches = [r for r in recs if r["op"] == "log_rows" and "rows" in r and "table" not in r]
    assert sum(r["rows"] for r in failed_batches) == 4  # batches 2 and 3 of 2 images each
    table = [r for r in recs if r.get("table") == "per_image"]
    assert table and table[0]["rows"] == 6  # the per-image table at the end, with its size
    assert run.summary["n_images"] == 6  # what still worked (the summary) was set
    assert [r["rows"] for r in recs if r["op"] == "log_leaderboard"] == [6]  # the job's leaderboard, recorded


def test_a_run_that_asked_for_wandb_and_got_nothing_fails_keeping_its_results(tmp_path, monkeypatch):
    """Without logger.best_effort=true a W&B failure is an error (after every row is stored), not a warning."""
    from benchmarks.run import LoggerError

    def refuse(**kw):
        raise ConnectionError("Could not reach api.wandb.ai (simulated)")

    monkeypatch.setattr(wandb, "init", refuse)
    with pytest.warns(RuntimeWarning), pytest.raises(LoggerError) as e:
        _run(tmp_path, best_effort=False)
    msg = str(e.value)
    assert "init" in msg and "api.wandb.ai" in msg and "logger.best_effort=true" in msg and "store" in msg
    out = tmp_path / "out"
    assert len(load_store(out)) == 6 and (out / "wandb_not_logged.jsonl").exists()


def test_experiment_report_to_an_unreachable_wandb_warns_and_writes_what_it_missed(tmp_path, monkeypatch):
    """``python -m benchmarks.report <dir> --wandb online`` with W&B unreachable: the report is written, the W&B
    copy is recorded as not logged, and the command says so (exit 1) instead of raising."""
    from benchmarks.report.page import main

    def refuse(**kw):
        raise ConnectionError("Could not reach api.wandb.ai (simulated)")

    res, _, out = _run(tmp_path)
    monkeypatch.setattr(wandb, "init", refuse)
    (out / "wandb_not_logged.jsonl").unlink(missing_ok=True)
    with pytest.warns(RuntimeWarning, match="W&B init failed"):
        rc = main([str(out), "--n-boot", "50", "--wandb", "online"])
    assert rc == 1 and (out / "report.html").exists()
    ops = [r["op"] for r in _not_logged(out)]
    assert ops[0] == "init" and "log_report" in ops
