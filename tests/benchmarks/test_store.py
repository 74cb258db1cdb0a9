"""Results store and attribution cache: atomic files, dedup on read, concurrent shard writers, cache round trip."""
from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks.io.cache import AttributionCache, roundtrip
from benchmarks.io.store import KEY, ShardWriter, atomic_write_text, load_store, remove_stale_temps, run_stem, store_dir


def rows(ids, method="ig", value=0.0, shard="0/1"):
    return [{"dataset": "d", "model": "m", "method": method, "method_hash": "h" * 10, "image_id": i, "label": 1,
             "status": "ok", "diffid.diffid": value, "diffid.insertion_curve": [0.1, 0.2], "shard": shard}
            for i in ids]


def test_run_stem_is_file_safe():
    assert run_stem("image net", "m/1", "ig", "abc") == "image_net__m_1__ig-abc"


def test_atomic_write_keeps_old_content_on_failure(tmp_path):
    p = tmp_path / "f.txt"
    atomic_write_text(p, "old")

    from benchmarks.io.store import atomic_write

    def broken(tmp):
        Path(tmp).write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(p, broken)
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]  # no temporary file left behind


def test_parts_fold_into_shard_file_and_latest_row_wins(tmp_path):
    w = ShardWriter(tmp_path, "d__m__ig-hhhhhhhhhh", (0, 2))
    w.write(rows(["a", "b"], value=1.0))
    w.write(rows(["b", "c"], value=2.0))  # b re-scored later
    df = load_store(tmp_path)
    assert sorted(df.image_id) == ["a", "b", "c"]
    assert df.set_index("image_id").loc["b", "diffid.diffid"] == 2.0
    assert len(list((store_dir(tmp_path) / "parts").glob("*.parquet"))) == 2
    w.close()
    assert [p.name for p in store_dir(tmp_path).glob("*.parquet")] == ["d__m__ig-hhhhhhhhhh__shard0of2.parquet"]
    assert not list((store_dir(tmp_path) / "parts").glob("*.parquet"))
    folded = load_store(tmp_path)
    pd.testing.assert_frame_equal(df, folded)
    assert list(folded.columns[:5]) == KEY
    assert folded["diffid.insertion_curve"].map(list).tolist() == [[0.1, 0.2]] * 3


def test_killed_between_fold_and_delete_counts_once(tmp_path):
    w = ShardWriter(tmp_path, "d__m__ig-hhhhhhhhhh", (0, 1))
    w.write(rows(["a", "b"]))
    part = next((store_dir(tmp_path) / "parts").glob("*.parquet"))
    saved = part.read_bytes()
    w.close()
    part.parent.mkdir(exist_ok=True)  # a clean fold removes the emptied parts/ folder
    part.write_bytes(saved)  # as if killed after writing the shard file, before deleting the part
    assert len(load_store(tmp_path)) == 2
    w.close()
    assert len(load_store(tmp_path)) == 2


def test_empty_store(tmp_path):
    df = load_store(tmp_path)
    assert df.empty and set(KEY) <= set(df.columns)


def _writer(out_dir, shard, n_batches):
    w = ShardWriter(out_dir, "d__m__ig-hhhhhhhhhh", (shard, 2))
    for b in range(n_batches):
        w.write(rows([f"s{shard}-{b}-{k}" for k in range(3)], shard=f"{shard}/2"))
        if b % 5 == 4:
            w.close()
    w.close()


def test_concurrent_shard_writers_and_reader(tmp_path):
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), s, 20)) for s in range(2)]
    for p in procs:
        p.start()
    seen = 0
    while any(p.is_alive() for p in procs):
        df = load_store(tmp_path)  # never fails nor sees a half-written file while others write and fold
        assert df["image_id"].is_unique
        assert len(df) >= seen  # rows are never lost on the way
        seen = len(df)
    for p in procs:
        p.join()
        assert p.exitcode == 0
    df = load_store(tmp_path)
    assert len(df) == 2 * 20 * 3 and df["image_id"].is_unique
    assert sorted(p.name for p in store_dir(tmp_path).glob("*.parquet")) == [
        "d__m__ig-hhhhhhhhhh__shard0of2.parquet", "d__m__ig-hhhhhhhhhh__shard1of2.parquet"]


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_cache_round_trip_matches_what_is_scored(tmp_path, dtype):
    g = torch.Generator().manual_seed(0)
    attr = torch.randn(2, 3, 8, 8, generator=g) * 1e-7  # probability gradients: far below float16's normal range
    attr[1] = 0.0
    cache = AttributionCache(tmp_path, "d", "m", "ig", "h", dtype=dtype)
    for k, i in enumerate(["x/1", "x/2"]):
        cache.put(i, attr[k], completeness=0.5, seconds=1.5, passes_fb=10, passes_f=1)
    expect = roundtrip(attr, dtype)
    for k, i in enumerate(["x/1", "x/2"]):
        rec = cache.get(i)
        assert torch.equal(rec["attr"], expect[k])
        assert (rec["completeness"], rec["seconds"], rec["passes_fb"], rec["passes_f"]) == (0.5, 1.5, 10, 1)
    rel = ((expect[0] - attr[0]).abs().max() / attr[0].abs().max()).item()
    assert rel < (1e-3 if dtype == "float16" else 1e-12)
    assert torch.equal(expect[1], attr[1])  # an all-zero map stays exactly zero
    assert cache.get("missing") is None


def test_cache_disabled_and_corrupt_file(tmp_path):
    off = AttributionCache(tmp_path, "d", "m", "ig", "h", enabled=False)
    off.put("a", torch.ones(1, 2, 2))
    assert off.get("a") is None and not (tmp_path / "cache").exists()
    on = AttributionCache(tmp_path, "d", "m", "ig", "h")
    on.put("a", torch.ones(1, 2, 2))
    on.path("a").write_bytes(b"not an npz")
    assert on.get("a") is None  # recomputed, not a crash
    with pytest.raises(ValueError, match="float16"):
        AttributionCache(tmp_path, "d", "m", "ig", "h", dtype="int8")


def test_curve_columns_of_different_lengths_survive(tmp_path):
    w = ShardWriter(tmp_path, "s", (0, 1))
    r = rows(["a", "b"])
    r[1]["diffid.insertion_curve"] = [0.5] * 5
    r[0]["pic.sic"] = np.nan
    w.write(r)
    w.close()
    df = load_store(tmp_path).set_index("image_id")
    assert len(df.loc["b", "diffid.insertion_curve"]) == 5 and np.isnan(df.loc["a", "pic.sic"])


def test_files_get_the_usual_mode(tmp_path):
    """Not mkstemp's 0600: other users of a shared cluster filesystem can read the results."""
    from benchmarks.io import store

    p = atomic_write_text(tmp_path / "m.json", "{}")
    assert (p.stat().st_mode & 0o777) == (0o666 & ~store._UMASK)


def test_stale_temporary_files_are_removed_and_fresh_ones_kept(tmp_path):
    parts = tmp_path / "store" / "parts"
    parts.mkdir(parents=True)
    old = parts / ".run__shard0of1.parquet.abc123.tmp"   # left by a process killed an hour ago
    fresh = tmp_path / "store" / ".run.parquet.def456.tmp"  # a writer at work
    keep = tmp_path / "store" / "run.parquet"
    for p in (old, fresh, keep):
        p.write_bytes(b"x")
    hours_ago = os.path.getmtime(old) - 2 * 3600
    os.utime(old, (hours_ago, hours_ago))
    os.utime(keep, (hours_ago, hours_ago))  # old but not a temporary file
    assert remove_stale_temps(tmp_path / "store") == 1
    assert not old.exists() and fresh.exists() and keep.exists()
    assert remove_stale_temps(tmp_path / "missing") == 0


def test_a_clean_finish_leaves_no_lock_file_and_no_parts_folder(tmp_path):
    w = ShardWriter(tmp_path, "ds__m__ig-abc", (0, 1))
    w.write([{"dataset": "ds", "model": "m", "method": "ig", "method_hash": "abc", "image_id": "a", "status": "ok"}])
    other = ShardWriter(tmp_path, "ds__m__ig-abc", (1, 2))  # another shard still at work keeps parts/
    other.write([{"dataset": "ds", "model": "m", "method": "ig", "method_hash": "abc", "image_id": "b",
                  "status": "ok"}])
    w.close()
    assert (store_dir(tmp_path) / "parts").is_dir()
    other.close()
    left = sorted(p.name for p in store_dir(tmp_path).rglob("*"))
    assert left == ["ds__m__ig-abc__shard0of1.parquet", "ds__m__ig-abc__shard1of2.parquet"]
    w.write([{"dataset": "ds", "model": "m", "method": "ig", "method_hash": "abc", "image_id": "c", "status": "ok"}])
    w.close()  # parts/ made again when needed
    assert sorted(load_store(tmp_path)["image_id"]) == ["a", "b", "c"]
