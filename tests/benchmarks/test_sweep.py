"""A tiny sweep (2 methods x 2 shards) through Hydra's submitit launcher run as local processes, end to end:
four jobs write their shards concurrently, the callback merges them into the tables when the sweep ends. Then what
the SLURM launchers and the tables of a partial sweep do without a cluster: the request check against a partition,
the presets, unequal image sets, order-independent intervals, the progress command (the real cluster:
test_slurm.py)."""
from __future__ import annotations

import re

import pandas as pd
import pytest
from test_run import base_overrides, cli, write_conf

from benchmarks.io.store import load_store

pytest.importorskip("hydra_plugins.hydra_submitit_launcher")


def test_submitit_local_sweep_merges_into_one_table(tmp_path):
    conf = write_conf(tmp_path, {"n": 5})
    out = tmp_path / "out"
    args = ["-m", "hydra/launcher=slurm_local", f"hydra.sweep.dir={tmp_path / 'sweep'}",
            *[o for o in base_overrides(conf, out) if o not in ("write_tables=false", "method=t_ig")],
            "method=t_ig,t_gi", "shard=0/2,1/2"]
    p = cli(args, timeout=500)
    assert p.returncode == 0, (p.stdout[-2000:], p.stderr[-4000:])
    df = load_store(out)
    assert sorted(df["method"].unique()) == ["grad_input", "ig"]
    counts = df.groupby(["method", "image_id"]).size()
    assert len(counts) == 2 * 5 and (counts == 1).all()  # every image exactly once per method
    assert df.groupby("method")["shard"].agg(lambda s: sorted(set(s))).tolist() == [["0/2", "1/2"]] * 2
    assert len(list((out / "store").glob("*.parquet"))) == 4  # one file per job (method x shard)
    table = out / "table.csv"
    if table.exists():  # written by benchmarks.table once the sweep ended
        text = table.read_text()
        assert "ig" in text and "grad_input" in text


def test_preflight_stops_a_sweep_before_any_job(tmp_path):
    import yaml

    conf = write_conf(tmp_path)
    (conf / "dataset" / "gone.yaml").write_text(yaml.safe_dump(
        {"name": "image_folder", "source": str(tmp_path / "no_such_folder")}))
    out = tmp_path / "out"
    args = ["-m", f"hydra.sweep.dir={tmp_path / 'sweep'}", "preflight=true",
            *[o for o in base_overrides(conf, out) if o not in ("dataset=tiny", "method=t_ig")],
            "dataset=gone,tiny", "method=t_ig,t_gi"]
    p = cli(args, timeout=300)
    assert p.returncode != 0
    assert "cannot start: 1 problem(s)" in p.stderr and "no_such_folder" in p.stderr
    assert not (out / "store").exists()  # no job ran, not even the ones whose data is there


# ------------------------------------------------------------------- the SLURM launchers' checks (no cluster needed)
NODES = [{"name": "n1", "cpus": 2, "mem_mb": 24105, "gpus": 0, "state": "idle"},
         {"name": "n2", "cpus": 16, "mem_mb": 4096, "gpus": 0, "state": "idle"}]


def _check(**params):
    from benchmarks.sweep.resources import check_request

    return check_request({"partition": "cpu", "timeout_min": 30, "nodes": 1, "tasks_per_node": 1, **params},
                         query=lambda p: NODES if p == "cpu" else [], info=lambda p: {"MaxTime": "1:00:00"},
                         default=lambda: "cpu", names=lambda: ["cpu"])


@pytest.mark.parametrize("params, key, fix", [
    ({"gpus_per_node": 1}, "hydra.launcher.gpus_per_node=1", "gpus_per_node=0"),
    ({"cpus_per_task": 32}, "hydra.launcher.cpus_per_task=32", "cpus_per_task=16 or less"),
    ({"mem_gb": 48}, "hydra.launcher.mem_gb=48", "mem_gb=23 or less"),
    ({"timeout_min": 240}, "hydra.launcher.timeout_min=240", "timeout_min=60 or less"),
    ({"nodes": 3}, "hydra.launcher.nodes=3", "nodes=2 or less"),
    ({"partition": "gpu"}, "hydra.launcher.partition=gpu", "choose one of: cpu"),
])
def test_a_request_no_node_meets_fails_naming_the_key(params, key, fix):
    from benchmarks.sweep.resources import RequestError

    with pytest.raises(RequestError) as e:
        _check(**{"cpus_per_task": 1, "mem_gb": 1, "gpus_per_node": 0, **params})
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(key) and fix in msg


def test_a_request_one_node_meets_passes():
    # 16 CPUs on n2 and 20 GB on n1, but not on one node: 16 CPUs with 8 GB fits no node
    assert _check(cpus_per_task=2, mem_gb=20, gpus_per_node=0) == "cpu"
    assert _check(partition=None, cpus_per_task=16, mem_gb=4, gpus_per_node=0) == "cpu"
    from benchmarks.sweep.resources import RequestError

    with pytest.raises(RequestError, match="mem_gb=8"):
        _check(cpus_per_task=16, mem_gb=8, gpus_per_node=0)


def test_slurm_parsing():
    from benchmarks.sweep import slurm

    assert slurm.gpus_in_gres("gpu:a100:4(S:0-1),shard:8") == 4 and slurm.gpus_in_gres("(null)") == 0
    assert slurm.minutes("2-12:00:00") == 3600 and slurm.minutes("30") == 30 and slurm.minutes("UNLIMITED") is None
    assert slurm._expand("12_[0-2,5%4]") == ["12_0", "12_1", "12_2", "12_5"] and slurm._expand("12_3") == ["12_3"]


def test_presets_compose_with_their_launcher():
    from hydra import compose as hcompose
    from hydra import initialize_config_dir

    from benchmarks.run import CONFIG_DIR

    for preset, gpus in (("slurm", 1), ("slurm_cpu", 0)):
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
            c = hcompose("config", overrides=[f"hydra/launcher={preset}"], return_hydra_config=True)
        launcher = c.hydra.launcher
        assert launcher._target_ == "hydra_plugins.benchmarks_sweep.launcher.SupervisedSlurmLauncher"
        assert launcher.gpus_per_node == gpus and launcher.timeout_min > 0


# ------------------------------------------------------------------------- tables of a partial store
def _frame(ids_a, ids_b):
    rows = []
    for m, ids in (("ig", ids_a), ("grad_input", ids_b)):
        rows += [dict(dataset="tiny", model="tinynet", method=m, method_hash=f"h{m}", image_id=f"im{i:02d}",
                      status="ok", **{"m.score": float(i % 7) + (m == "ig")}) for i in ids]
    return pd.DataFrame(rows)


def test_methods_on_different_image_sets_are_flagged_and_ranked_on_the_shared_ones():
    from benchmarks.report.table import build_tables

    df = _frame(range(12), range(6))
    df.loc[(df["method"] == "ig") & (df["image_id"] >= "im06"), "m.score"] = -100.0  # only IG has these images
    t = build_tables(df, ["Score=m.score:max"], baseline="ig", published=False)
    assert any("scored on different images" in n and "6 shared" in n for n in t.notes)
    rank = t.summary.set_index("method")["rank"]
    assert t.summary.set_index("method")["mean"]["ig"] < t.summary.set_index("method")["mean"]["grad_input"]
    assert rank["ig"] == 1 and rank["grad_input"] == 2  # on the 6 shared images IG is better by 1
    md = t.markdown()
    assert "(n=6)" in md
    assert t.comparison["n_pairs"].tolist() == [6] and t.comparison["diff"].tolist() == [pytest.approx(-1.0)]
    full = build_tables(_frame(range(12), range(12)), ["Score=m.score:max"], baseline="ig", published=False)
    assert not full.notes and (full.summary["rank"] > 0).any() and not re.search(r"\(n=\d", full.markdown())


def test_intervals_do_not_depend_on_row_order():
    from benchmarks.report.table import build_tables

    df = _frame(range(30), range(30))
    a = build_tables(df, ["Score=m.score:max"], baseline="ig", published=False)
    b = build_tables(df.sample(frac=1.0, random_state=3).reset_index(drop=True), ["Score=m.score:max"],
                     baseline="ig", published=False)
    cols = ["variant", "mean", "lo", "hi", "n"]
    pd.testing.assert_frame_equal(a.summary[cols].sort_values("variant").reset_index(drop=True),
                                  b.summary[cols].sort_values("variant").reset_index(drop=True))
    assert a.summary["lo"].notna().all()


def test_progress_command_reads_the_store_and_the_record(tmp_path, capsys):
    import json

    from benchmarks.io.store import write_parquet
    from benchmarks.sweep.progress import main

    out = tmp_path / "out"
    df = _frame(range(4), range(2)).assign(shard="0/2")
    write_parquet(out / "store" / "x.parquet", df)
    (out / "manifest_tiny_abc.json").write_text(json.dumps({"name": "tiny", "ids": [f"im{i:02d}" for i in range(8)]}))
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "sweep.json").write_text(json.dumps({"out_dir": str(out), "submitted_at": "now", "tasks": [
        {"index": 0, "overrides": "method=t_ig shard=0/2", "job_id": "999999_0", "stdout": "o", "stderr": "e",
         "outcome": "failed", "state": "CANCELLED", "why": "CANCELLED without a result file"}]}))
    assert main([str(sweep)]) == 0
    text = capsys.readouterr().out
    assert "ig [hig]: 4 of 8 images" in text and "grad_input [hgrad_i]: 2 of 8 images" in text
    assert "#0 method=t_ig shard=0/2: job 999999_0 FAILED (CANCELLED without a result file); logs: o, e" in text
    assert main([str(tmp_path / "nothing")]) == 2


def test_watch_fails_a_task_that_ended_without_its_result_and_keeps_a_requeued_one(tmp_path, monkeypatch):
    """The launcher's follow-up on fake tasks: one finishes with its result file, one is cancelled (no result), one
    passes through PREEMPTED to PENDING (a requeue) and then finishes, one leaves the queue without a trace."""
    import pickle
    from types import SimpleNamespace

    from benchmarks.sweep import slurm, supervise

    def job(name):
        paths = SimpleNamespace(result_pickle=tmp_path / f"{name}_result.pkl", stdout=tmp_path / f"{name}.out",
                                stderr=tmp_path / f"{name}.err")
        return SimpleNamespace(job_id=name, paths=paths)

    tasks = [supervise.Task(i, [f"method=m{i}"], job(f"7_{i}")) for i in range(4)]
    script = iter([
        {"7_0": ("RUNNING", ""), "7_1": ("CANCELLED", ""), "7_2": ("PREEMPTED", ""), "7_3": ("PENDING", "")},
        {"7_0": ("RUNNING", ""), "7_1": ("CANCELLED", ""), "7_2": ("PENDING", "BeginTime")},
        {"7_0": ("COMPLETED", ""), "7_1": ("CANCELLED", ""), "7_2": ("RUNNING", "")},
    ])
    clock = iter(range(0, 1000, 10))
    last = {}

    def states(ids):
        ids = list(ids)
        step = next(script, None)
        if step is None:  # task 2 has written its result by now
            (tmp_path / "7_2_result.pkl").write_bytes(pickle.dumps(("success", "r2")))
            step = {}
        if "7_0" in step and step["7_0"][0] == "COMPLETED":
            (tmp_path / "7_0_result.pkl").write_bytes(pickle.dumps(("success", "r0")))
        last.update(step)
        return {i: step[i] for i in ids if i in step}

    monkeypatch.setattr(slurm, "task_states", states)
    monkeypatch.setattr(supervise.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(supervise.time, "sleep", lambda s: None)
    supervise.watch(tasks, poll_s=0, grace_s=15)
    assert [t.outcome for t in tasks] == ["ok", "failed", "ok", "failed"]
    assert tasks[0].value == "r0" and tasks[2].value == "r2"
    assert tasks[1].why == "CANCELLED without a result file"
    assert "left the queue" in tasks[3].why
    report = supervise.failure_report(tasks, tmp_path / "out", tables=True)
    assert report.splitlines()[0].startswith("sweep: 2 of 4 tasks failed")
    assert f"#1 method=m1: job 7_1 CANCELLED without a result file; logs: {tmp_path / '7_1.out'}" in report
