"""Disk full while writing: every file the harness writes (batch parts, the folded shard file, cached attributions,
the manifest) is written to a temporary file and renamed only once complete, so a write that fails half-way
(ENOSPC from ``write`` or, as NFS reports it, from ``fsync``) leaves nothing that looks finished, the run stops
with the OS's message, and a rerun completes with every row exactly once."""
from __future__ import annotations

import errno
import io
import os
import pathlib

import numpy as np
import pandas as pd
import pytest
from fault_helpers import base_overrides, comparable, run_inproc, write_conf

from benchmarks.io.cache import AttributionCache
from benchmarks.io.store import KEY, load_store

IDS = [f"im/{i:02d}.png" for i in range(6)]


def _enospc(path):
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


class DiskFull:
    """Fails the ``fail_on``-th (1-based) matching write after writing half of its bytes."""

    def __init__(self, fail_on: int = 1, match=lambda path: True):
        self.fail_on, self.match, self.calls, self.failed = fail_on, match, 0, []

    def hit(self, path) -> bool:
        if not self.match(str(path)):
            return False
        self.calls += 1
        return self.calls == self.fail_on

    def half_write(self, path, data: bytes):
        with open(path, "wb") as fh:
            fh.write(data[: len(data) // 2])
        self.failed.append(str(path))
        raise _enospc(path)


def _finished_looking(out):
    """Every file under out_dir except the (hidden) temporary files the atomic writer names ``.<name>.*.tmp``."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and not p.name.endswith(".tmp"))


def _leftover_tmp(out):
    return [p for p in out.rglob("*.tmp")]


def _check_everything_readable(out):
    """Every finished-looking file parses completely."""
    for p in (out / "store").rglob("*.parquet"):
        pd.read_parquet(p)
    for p in (out / "cache").rglob("*.npz"):
        with np.load(p) as z:
            z["attr"].sum()
    for p in out.glob("manifest_*.json"):
        import json

        json.loads(p.read_text())


@pytest.fixture
def setup(tmp_path):
    conf = write_conf(tmp_path)
    ref = tmp_path / "reference"
    run_inproc(base_overrides(conf, ref))
    return conf, tmp_path / "out", load_store(ref)


def _rerun_and_compare(conf, out, reference, planted_tmp=0):
    run_inproc(base_overrides(conf, out))
    df = load_store(out)
    assert sorted(df["image_id"]) == IDS and not df.duplicated(KEY).any()
    shard = list((out / "store").glob("*.parquet"))
    assert len(shard) == 1 and len(pd.read_parquet(shard[0])) == 6
    cols = ["image_id", "status", "pred", "completeness.completeness_error", "completeness_error"]
    pd.testing.assert_frame_equal(comparable(df)[cols], comparable(reference)[cols])
    assert len(_leftover_tmp(out)) == planted_tmp


@pytest.mark.parametrize("when", ["batch_part", "final_fold"])
def test_disk_full_while_writing_results(setup, monkeypatch, when):
    conf, out, reference = setup
    real = pd.DataFrame.to_parquet
    # batch parts are written per batch (3 here); the fold into the shard file comes after them
    full = DiskFull(fail_on=2 if when == "batch_part" else 1,
                    match=(lambda p: "/parts/" in p) if when == "batch_part" else (lambda p: "/parts/" not in p))

    def to_parquet(self, path, *a, **k):
        if not full.hit(path):
            return real(self, path, *a, **k)
        buf = io.BytesIO()
        real(self, buf, *a, **k)
        full.half_write(path, buf.getvalue())

    monkeypatch.setattr(pd.DataFrame, "to_parquet", to_parquet)
    with pytest.raises(OSError, match="No space left on device") as e:
        run_inproc(base_overrides(conf, out))
    assert e.value.errno == errno.ENOSPC and full.failed
    assert not _leftover_tmp(out) and not any(os.path.exists(f) for f in full.failed)
    _check_everything_readable(out)
    mid = load_store(out)
    assert not mid.duplicated(KEY).any()
    if when == "batch_part":
        assert sorted(mid["image_id"]) == IDS[:2]  # batch 1 kept, batch 2 not taken as written
    else:
        assert sorted(mid["image_id"]) == IDS  # all rows still in their parts, nothing lost
        assert not list((out / "store").glob("*.parquet"))
    monkeypatch.setattr(pd.DataFrame, "to_parquet", real)
    _rerun_and_compare(conf, out, reference)


def test_disk_full_reported_by_fsync(setup, monkeypatch):
    """NFS and some quotas report ENOSPC only at fsync/close: the complete-looking temp file is still discarded."""
    conf, out, reference = setup
    real_fsync = os.fsync
    state = {"n": 0}

    def fsync(fd):
        if os.path.isfile(f"/proc/self/fd/{fd}") and "/parts/" in os.readlink(f"/proc/self/fd/{fd}"):
            state["n"] += 1
            if state["n"] == 2:
                raise _enospc(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="No space left on device"):
        run_inproc(base_overrides(conf, out))
    assert not _leftover_tmp(out)
    assert sorted(load_store(out)["image_id"]) == IDS[:2]
    monkeypatch.setattr(os, "fsync", real_fsync)
    _rerun_and_compare(conf, out, reference)


@pytest.mark.parametrize("what", ["cache", "manifest"])
def test_disk_full_while_writing_the_cache_or_the_manifest(setup, monkeypatch, what):
    conf, out, reference = setup
    real_bytes, real_text = pathlib.Path.write_bytes, pathlib.Path.write_text
    full = DiskFull(fail_on=3 if what == "cache" else 1,
                    match=(lambda p: "/cache/" in p) if what == "cache" else (lambda p: "manifest_" in p))

    def write_bytes(self, data):
        return full.half_write(self, data) if full.hit(self) else real_bytes(self, data)

    def write_text(self, data, *a, **k):
        return full.half_write(self, data.encode()) if full.hit(self) else real_text(self, data, *a, **k)

    monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)
    monkeypatch.setattr(pathlib.Path, "write_text", write_text)
    with pytest.raises(OSError, match="No space left on device"):
        run_inproc(base_overrides(conf, out))
    assert full.failed and not _leftover_tmp(out)
    _check_everything_readable(out)
    if what == "cache":  # the third image's attribution is not cached; the first two are
        assert len(list((out / "cache").rglob("*.npz"))) == 2
    else:  # no manifest, no rows: the rerun builds both afresh
        assert _finished_looking(out) == []
    monkeypatch.setattr(pathlib.Path, "write_bytes", real_bytes)
    monkeypatch.setattr(pathlib.Path, "write_text", real_text)
    _rerun_and_compare(conf, out, reference)


def test_partial_files_left_by_a_crash_are_never_read_as_results(setup):
    """What a hard crash can leave (the writer's hidden temp files, half written) is ignored; a damaged cache
    entry is recomputed, not trusted."""
    conf, out, reference = setup
    run_inproc(base_overrides(conf, out))
    (out / "store" / ".tiny__x.parquet.abc123.tmp").write_bytes(b"PAR1 half a file")
    (out / "store" / "parts").mkdir(exist_ok=True)
    (out / "store" / "parts" / ".tiny__x__shard0of1__1-2.parquet.def456.tmp").write_bytes(b"PAR1")
    assert len(load_store(out)) == 6
    cache = AttributionCache(out, "tiny", "tinynet", "ig", "x")
    cache.dir = next((out / "cache").rglob("*.npz")).parent
    victim = cache.path("im/00.png")
    victim.write_bytes(victim.read_bytes()[:40])  # damaged (not something the harness writes)
    assert cache.get("im/00.png") is None and cache.get("im/01.png") is not None
    for p in (out / "store").glob("*.parquet"):
        p.unlink()  # rows gone: attributions are read back from the cache, the damaged one recomputed
    _rerun_and_compare(conf, out, reference, planted_tmp=2)
    assert cache.get("im/00.png") is not None  # rewritten whole
