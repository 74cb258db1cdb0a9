"""Pre-emption: ``python -m benchmarks.run`` killed with SIGKILL at random (seeded) moments, again and again; the
rerun completes and its table equals the one of an uninterrupted run, with no row missing and none twice."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pandas as pd
from fault_helpers import ROOT, base_overrides, child_env, cli, comparable, run_inproc, write_conf

from benchmarks.io.store import KEY, load_store
from benchmarks.report.table import summarize

N_IMAGES = 8
#: 4 batches of 2; IG with 4 points; DiffID with 3 ratios (curves as list columns) and the completeness metric
COMMON = ("batch_size=2", "method.n_steps=4", "+metrics.diffid={ratios: [0.25, 0.5, 0.75]}")


def _part_names(out):
    parts = out / "store" / "parts"
    return {p.name for p in parts.glob("*.parquet")} if parts.is_dir() else set()


def _killed_runs(args, out, rng, n_kills):
    """Start the CLI ``n_kills`` times; kill it once during start-up, then each time shortly after it wrote a batch.

    Returns what each attempt did: ("killed", seconds after start) or ("exited", return code)."""
    log = []
    seen = set()
    for k in range(n_kills):
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.run", *args], cwd=ROOT, env=child_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.time()
        if k == 0:  # somewhere in start-up: imports, config, manifest, folding leftovers
            deadline = t0 + rng.uniform(0.3, 3.0)
            while time.time() < deadline and proc.poll() is None:
                time.sleep(0.01)
        else:  # after the run made progress (a new batch file), plus a random slice of the next batch
            deadline = t0 + 120
            while time.time() < deadline and proc.poll() is None and not (_part_names(out) - seen):
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.25))
        seen |= _part_names(out)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            log.append(("killed", round(time.time() - t0, 2)))
        else:
            log.append(("exited", proc.returncode))
        mid = load_store(out)  # whatever a kill left is readable and holds no key twice
        assert not mid.duplicated(KEY).any(), log
        assert set(mid["image_id"]) <= {f"im/{i:02d}.png" for i in range(N_IMAGES)}
    return log


def test_repeated_sigkill_then_rerun_equals_uninterrupted_run(tmp_path):
    conf = write_conf(tmp_path, {"n": N_IMAGES}, {"delay": 0.03})
    ref_out, out = tmp_path / "reference", tmp_path / "killed"
    run_inproc(base_overrides(conf, ref_out, *COMMON))
    reference = load_store(ref_out)
    assert len(reference) == N_IMAGES and (reference["status"] == "ok").all()

    args = base_overrides(conf, out, *COMMON, f"hydra.run.dir={tmp_path / 'hydra'}")
    log = _killed_runs(args, out, random.Random(2026), n_kills=4)
    assert sum(what == "killed" for what, _ in log) >= 3, log  # the kills did land while it ran

    for tmp in out.rglob(".*.tmp"):  # what the kills left mid-write, aged past the stale limit
        os.utime(tmp, (tmp.stat().st_mtime - 7200,) * 2)
    final = cli(args, env_extra=child_env(), timeout=300)
    assert final.returncode == 0, (log, final.stderr[-3000:])
    assert not list(out.rglob(".*.tmp"))  # the rerun removed them
    df = load_store(out)
    shard_files = list((out / "store").glob("*.parquet"))
    assert len(shard_files) == 1 and not list((out / "store" / "parts").glob("*.parquet"))
    raw = pd.read_parquet(shard_files[0])  # the file itself, not the de-duplicating reader
    assert len(raw) == N_IMAGES and not raw.duplicated(KEY).any()
    assert sorted(df["image_id"]) == [f"im/{i:02d}.png" for i in range(N_IMAGES)]

    # identical rows (up to timings and write stamps), curves included, and an identical table
    pd.testing.assert_frame_equal(comparable(df), comparable(reference), check_exact=True)
    for metric_set in ("diffid", "completeness"):
        pd.testing.assert_frame_equal(summarize(df, metric_set), summarize(reference, metric_set))
