"""Sweeps through the real ``hydra/launcher=slurm`` on a real SLURM cluster (CI: the one-node cluster of
``scripts/slurm_cluster.sh``, with accounting): a 2-method x 2-shard sweep merged into one table; a task cancelled
mid-run, then the same command resuming it with no row lost or doubled; a preemption signal (SIGUSR2) that submitit
answers by requeueing, the task resuming from the store; a request no node can meet, failing before any work; the
launcher stopped, cancelling its array. Marked ``slurm``: ``make test-slurm`` runs them apart from the main suite;
where no cluster answers they skip, saying why."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_run import HERE, ROOT, base_overrides, cli, write_conf

from benchmarks.io.store import load_store
from benchmarks.sweep import slurm

pytestmark = pytest.mark.slurm
pytest.importorskip("hydra_plugins.hydra_submitit_launcher")

ENV = {"BENCHMARKS_SWEEP_POLL_S": "1", "BENCHMARKS_SWEEP_GRACE_S": "5", "OMP_NUM_THREADS": "1"}
#: images and seconds per classifier call of the slow sweeps: a task runs long enough to be cancelled or signalled
#: mid-run, past the cluster's KillWait (5 s in scripts/slurm_cluster.sh: submitit ignores SIGTERM until SIGKILL)
N, DELAY = 16, 0.75
BUILD = "build one with `sudo bash scripts/slurm_cluster.sh` (what .ci/run does)"


@pytest.fixture(scope="module")
def partition():
    """The cluster's default partition; skips (saying why) where no cluster with accounting answers."""
    why = os.environ.get("SLURM_CLUSTER_ERROR")
    if why:
        pytest.skip(f"the SLURM cluster could not be built: {why}")
    missing = [c for c in ("sbatch", "squeue", "sinfo", "scancel", "sacct") if shutil.which(c) is None]
    if missing:
        pytest.skip(f"no SLURM cluster here ({', '.join(missing)} not on PATH): {BUILD}")
    try:
        part = slurm.default_partition()
        nodes = slurm.partition_nodes(part) if part else []
    except slurm.SlurmError as e:
        pytest.skip(f"SLURM does not answer ({e}): {BUILD}")
    if not any(n["state"].startswith(("idle", "mix", "alloc")) for n in nodes):
        pytest.skip(f"no node of partition {part} is up (sinfo: {nodes}): {BUILD}")
    ok, why = slurm.accounting()
    if not ok:
        pytest.skip(f"SLURM accounting does not answer ({why}): {BUILD}")
    return part


def sweep(tmp_path, conf, out, partition, *extra, methods="t_ig,t_gi", preset="slurm"):
    return ["-m", f"hydra/launcher={preset}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
            f"hydra.launcher.partition={partition}", "hydra.launcher.gpus_per_node=0",
            "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=10",
            *[o for o in base_overrides(conf, out) if o not in ("write_tables=false", "method=t_ig")],
            f"method={methods}", "shard=0/2,1/2", *extra]


def popen(args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]), "HYDRA_FULL_ERROR": "0", **ENV}
    return subprocess.Popen([sys.executable, "-m", "benchmarks.run", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(what, check, timeout=240, step=0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def task(sweep_dir: Path, index: int) -> dict:
    return next(t for t in json.loads((sweep_dir / "sweep.json").read_text())["tasks"] if t["index"] == index)


def part_of_task0(out):
    """A batch of task #0 (IG, shard 0/2) written and the shard not finished: the task is mid-run."""
    parts = out / "store" / "parts"
    return parts.is_dir() and any(p.name.startswith("tiny__tinynet__ig-") and "__shard0of2__" in p.name
                                  for p in parts.glob("*.parquet"))


def assert_every_row_once(out, n):
    df = load_store(out)
    counts = df.groupby(["method", "image_id"]).size()
    assert sorted(df["method"].unique()) == ["grad_input", "ig"]
    assert len(counts) == 2 * n and (counts == 1).all(), counts[counts != 1]
    return df


def test_slurm_sweep_2x2_merges_into_one_table(tmp_path, partition):
    conf, out = write_conf(tmp_path, {"n": 6}), tmp_path / "out"
    p = cli(sweep(tmp_path, conf, out, partition), env_extra=ENV, timeout=400)
    assert p.returncode == 0, (p.stdout[-3000:], p.stderr[-3000:])
    df = assert_every_row_once(out, 6)
    assert df.groupby("method")["shard"].agg(lambda s: sorted(set(s))).tolist() == [["0/2", "1/2"]] * 2
    assert len(list((out / "store").glob("*.parquet"))) == 4  # one file per array task
    text = (out / "table.csv").read_text()
    assert "grad_input" in text and "ig" in text
    record = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    ids = [t["job_id"] for t in record["tasks"]]
    assert len({i.split("_")[0] for i in ids}) == 1 and sorted(i.split("_")[1] for i in ids) == ["0", "1", "2", "3"]
    assert all(t["outcome"] == "ok" for t in record["tasks"])
    assert "submitted 4 tasks" in (tmp_path / "sweep" / "launcher.log").read_text()
    states = slurm.task_states(ids)
    assert {s for s, _ in states.values()} == {"COMPLETED"}, states  # real array tasks, as SLURM saw them
    prog = subprocess.run([sys.executable, "-m", "benchmarks.sweep", str(tmp_path / "sweep")], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert prog.returncode == 0 and "4 completed" in prog.stdout and "6 of 6 images" in prog.stdout, prog.stdout


def test_scancel_one_task_then_relaunch_loses_and_doubles_nothing(tmp_path, partition):
    conf, out = write_conf(tmp_path, {"n": N}, {"delay": DELAY}), tmp_path / "out"
    args = sweep(tmp_path, conf, out, partition)
    proc = popen(args)
    try:
        wait_for("a batch of task #0 in the store", lambda: part_of_task0(out))
        job = task(tmp_path / "sweep", 0)["job_id"]
        subprocess.run(["scancel", job], check=True)
        stdout, stderr = proc.communicate(timeout=400)
    finally:
        proc.kill()
    assert proc.returncode not in (0, None), stderr[-3000:]
    assert "1 of 4 tasks failed" in stderr and "#0 " in stderr and f"job {job} CANCELLED" in stderr, stderr[-3000:]
    assert task(tmp_path / "sweep", 0)["stdout"] in stderr  # the failed task's log paths
    assert (tmp_path / "sweep" / "failed.txt").is_file()
    table = (out / "table.md").read_text()  # the tables of what finished, the missing images marked
    assert "scored on different images" in table and re.search(r"\(n=\d+\)", table)
    assert "**Incomplete sweep**: 1 of 4 tasks failed" in table and "- missing: task #0" in table
    partial = load_store(out)
    n_ig = int((partial["method"] == "ig").sum())
    assert 1 <= n_ig < N and int((partial["method"] == "grad_input").sum()) == N
    p = cli(args, env_extra=ENV, timeout=400)  # the same command: only what is missing runs
    assert p.returncode == 0, (p.stdout[-3000:], p.stderr[-3000:])
    assert_every_row_once(out, N)
    assert "scored on different images" not in (out / "table.md").read_text()
    assert not (tmp_path / "sweep" / "failed.txt").exists()  # the relaunch completed the sweep


def test_preemption_signal_requeues_and_resumes(tmp_path, partition):
    conf, out = write_conf(tmp_path, {"n": N}, {"delay": DELAY}), tmp_path / "out"
    proc = popen(sweep(tmp_path, conf, out, partition))
    try:
        wait_for("a batch of task #0 in the store", lambda: part_of_task0(out))
        t0 = task(tmp_path / "sweep", 0)
        # what SLURM sends on preemption; submitit requeues the task at once, and scancel then keeps retrying
        # ("Job can not be altered now") for a minute or more: it is not waited for
        sig = subprocess.Popen(["scancel", "--signal=USR2", t0["job_id"]], stderr=subprocess.DEVNULL)
        wait_for("the task requeued", lambda: {"Restarts=1", "JobState=PENDING"} <= set(subprocess.run(
            ["scontrol", "show", "job", t0["job_id"]], capture_output=True, text=True, check=False).stdout.split()),
            timeout=90)
        sig.kill()
        sig.wait()
        # SLURM holds a requeued job for about two minutes (Reason=BeginTime): let it start now
        subprocess.run(["scontrol", "update", f"JobId={t0['job_id']}", "StartTime=now"], check=False)
        stdout, stderr = proc.communicate(timeout=500)
    finally:
        proc.kill()
    assert proc.returncode == 0, (stdout[-3000:], stderr[-3000:])
    assert_every_row_once(out, N)
    log = Path(t0["stdout"]).read_text() + Path(t0["stderr"]).read_text()
    assert "requeue" in log.lower(), log[-3000:]  # submitit answered the signal by requeueing the task
    assert task(tmp_path / "sweep", 0)["outcome"] == "ok"


def test_a_request_the_node_cannot_meet_fails_before_work(tmp_path, partition):
    conf, out = write_conf(tmp_path), tmp_path / "out"
    cases = [(["hydra.launcher.mem_gb=100000"], "slurm", "hydra.launcher.mem_gb=100000"),
             (["hydra.launcher.cpus_per_task=4096"], "slurm_cpu", "hydra.launcher.cpus_per_task=4096")]
    for extra, preset, key in cases:
        p = cli(sweep(tmp_path, conf, out, partition, *extra, preset=preset), env_extra=ENV, timeout=200)
        assert p.returncode != 0 and key in p.stderr and "Nothing was submitted" in p.stderr, p.stderr[-2000:]
    # the GPU preset as the README gives it, on a partition without GPUs: the GPU key is named
    args = [a for a in sweep(tmp_path, conf, out, partition) if not a.startswith("hydra.launcher.gpus_per_node")]
    p = cli(args, env_extra=ENV, timeout=200)
    assert p.returncode != 0 and "hydra.launcher.gpus_per_node=1" in p.stderr, p.stderr[-2000:]
    assert not (out / "store").exists() and not (tmp_path / "sweep" / ".submitit").exists()


def test_stopping_the_launcher_cancels_its_array(tmp_path, partition):
    conf, out = write_conf(tmp_path, {"n": N}, {"delay": DELAY}), tmp_path / "out"
    proc = popen(sweep(tmp_path, conf, out, partition))
    try:
        wait_for("a batch of task #0 in the store", lambda: part_of_task0(out))
        ids = [task(tmp_path / "sweep", i)["job_id"] for i in range(4)]
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    ended = wait_for("the array cancelled", lambda: (lambda s: s if all(v[0] in slurm.TERMINAL for v in s.values())
                                                     else None)(slurm.task_states(ids)), timeout=60)
    assert "CANCELLED" in {s for s, _ in ended.values()}
    assert "cancelling the array" in (tmp_path / "sweep" / "launcher.log").read_text()
