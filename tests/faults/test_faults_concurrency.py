"""Several writers on one results store at once: shards of one run, jobs of one sweep, and the same job started twice
(a requeued SLURM job whose first copy still runs). Nothing may be clobbered: every row ends up stored exactly once."""
from __future__ import annotations

import subprocess
import sys
import threading

import pandas as pd
import pytest
from fault_helpers import ROOT, base_overrides, child_env, write_conf

from benchmarks.io import store
from benchmarks.io.store import KEY, ShardWriter, load_store


def _rows(ids, tag="a"):
    return [{"dataset": "d", "model": "m", "method": "ig", "method_hash": "h", "image_id": i, "status": "ok",
             "note": tag, "label": 0} for i in ids]


def test_two_shards_at_once(tmp_path):
    """Two CLI jobs run concurrently on one out_dir: shard 0/2 and 1/2 of IG (jobs of different methods write
    different files; tests/benchmarks/test_sweep.py runs four sweep jobs at once)."""
    conf = write_conf(tmp_path, {"n": 6}, {"delay": 0.01})
    out = tmp_path / "out"
    jobs = [("method=t_ig", "shard=0/2"), ("method=t_ig", "shard=1/2")]
    procs = []
    for k, (method, shard) in enumerate(jobs):
        args = [o for o in base_overrides(conf, out, "batch_size=1", f"hydra.run.dir={tmp_path / f'hy{k}'}")
                if o != "method=t_ig"] + [method, shard]
        procs.append(subprocess.Popen([sys.executable, "-m", "benchmarks.run", *args], cwd=ROOT, env=child_env(),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    df = load_store(out)
    ids = [f"im/{i:02d}.png" for i in range(6)]
    assert sorted(df["image_id"]) == ids and not df.duplicated(KEY).any()
    assert df.groupby("shard").size().to_dict() == {"0/2": 3, "1/2": 3}
    files = sorted(p.name for p in (out / "store").glob("*.parquet"))
    assert len(files) == 2 and not list((out / "store" / "parts").glob("*.parquet"))
    raw = pd.concat([pd.read_parquet(out / "store" / f) for f in files])
    assert len(raw) == 6 and not raw.duplicated(KEY).any()


def test_same_shard_folded_by_two_writers_at_once_loses_nothing(tmp_path, monkeypatch):
    """Writer B folds the shard (reads parts + shard file) while writer A, on the same shard, writes a new batch and
    folds too. Without mutual exclusion B's stale fold would replace A's and A's new batch would be gone."""
    a = ShardWriter(tmp_path, "d__m__ig-h", (0, 1))
    b = ShardWriter(tmp_path, "d__m__ig-h", (0, 1))
    a.write(_rows(["x0", "x1"]))
    b_has_read, a_done = threading.Event(), threading.Event()
    real_dedupe = store.dedupe

    def slow_dedupe(df):  # B pauses between reading the files and writing the folded shard
        if threading.current_thread().name == "writer-b":
            b_has_read.set()
            a_done.wait(timeout=1.5)
        return real_dedupe(df)

    monkeypatch.setattr(store, "dedupe", slow_dedupe)
    tb = threading.Thread(target=b.close, name="writer-b")
    tb.start()
    assert b_has_read.wait(timeout=30)
    a.write(_rows(["x2", "x3"]))

    def fold_a():
        a.close()
        a_done.set()

    ta = threading.Thread(target=fold_a, name="writer-a")
    ta.start()
    ta.join(timeout=30)
    tb.join(timeout=30)
    assert not ta.is_alive() and not tb.is_alive()
    monkeypatch.setattr(store, "dedupe", real_dedupe)
    df = load_store(tmp_path)
    assert sorted(df["image_id"]) == ["x0", "x1", "x2", "x3"]
    shard = pd.read_parquet(a.path)  # the folded file alone holds every row
    assert sorted(shard["image_id"]) == ["x0", "x1", "x2", "x3"]


@pytest.mark.parametrize("n_writers", [4])
def test_many_writers_of_one_shard_in_threads(tmp_path, n_writers):
    """Writers that each write two batches and fold, all at once: every row survives, once."""
    barrier = threading.Barrier(n_writers)
    errors = []

    def job(k):
        try:
            w = ShardWriter(tmp_path, "d__m__ig-h", (0, 1))
            barrier.wait()
            for j in range(2):
                w.write(_rows([f"w{k}-{j}-{i}" for i in range(3)], tag=str(k)))
                w.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=job, args=(k,)) for k in range(n_writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    df = load_store(tmp_path)
    assert len(df) == n_writers * 6 and not df.duplicated(KEY).any()
    shard = pd.read_parquet(tmp_path / "store" / "d__m__ig-h__shard0of1.parquet")
    assert len(shard) == n_writers * 6
