"""The results store: one row per (dataset, model, method, method config, image), in Parquet files.

Layout under ``<out_dir>/store/``:

- ``<dataset>__<model>__<method>-<method_hash>__shard<i>of<n>.parquet``: the rows of one run shard.
- ``parts/<same stem>__<time_ns>-<pid>.parquet``: rows written batch by batch while a shard runs; the runner
  folds them into the shard file when the shard ends (or when it is resumed after a kill).

Every file is written atomically (temporary file in the same folder, fsync, ``os.replace``), so a reader or a
process killed at any moment sees whole files only. Writers of different shards never touch the same file.
:func:`load_store` reads shard files and leftover parts together and keeps one row per key (the one written last),
so a batch that is in both a shard file and a part (killed between the two steps) is never counted twice.
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

try:
    import fcntl
except ImportError:  # pragma: no cover - no flock (Windows): one writer per shard there
    fcntl = None

KEY = ["dataset", "model", "method", "method_hash", "image_id"]
#: Columns every row has, in the order files are written (metric columns follow, then provenance).
LEADING = KEY + ["config_hash", "label", "target", "pred", "status", "note", "completeness_error", "seconds",
                 "passes_fb", "passes_f"]
TRAILING = ["metrics", "device", "versions", "git_commit", "seed", "shard", "written_at"]
STATUSES = ("ok", "bad_model_output", "zero_attribution", "skipped")

_SAFE = re.compile(r"[^A-Za-z0-9._+=-]")
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _safe(name: str) -> str:
    return _SAFE.sub("_", str(name))


def run_stem(dataset: str, model: str, method: str, method_hash: str) -> str:
    """File-name stem shared by every shard of one (dataset, model, method config) run."""
    return f"{_safe(dataset)}__{_safe(model)}__{_safe(method)}-{_safe(method_hash)}"


def shard_tag(shard: tuple[int, int]) -> str:
    return f"shard{shard[0]}of{shard[1]}"


def store_dir(out_dir) -> Path:
    return Path(out_dir) / "store"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write) -> Path:
    """Call ``write(tmp_path)`` then fsync and rename onto ``path``: readers see the old file or the new one."""
    path = Path(path)
    for attempt in range(5):  # an empty parts/ folder may be removed by another writer's fold in between
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            break
        except FileNotFoundError:
            if attempt == 4:
                raise
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode a plain open() would
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


#: a temporary file of :func:`atomic_write` older than this was left by a killed process (a write renames its own
#: within seconds)
STALE_TEMP_SECONDS = 3600.0


def remove_stale_temps(folder, older_than: float = STALE_TEMP_SECONDS) -> int:
    """Delete the temporary files of atomic writes (``.<name>.<random>.tmp``) under ``folder`` that are older than
    ``older_than`` seconds: leftovers of killed runs, which readers ignore but which take disk. Returns how many.
    Younger ones may belong to a writer at work (another shard) and are left alone."""
    now, removed = time.time(), 0
    for p in Path(folder).rglob(".*.tmp"):
        try:
            if now - p.stat().st_mtime > older_than:
                p.unlink()
                removed += 1
        except FileNotFoundError:  # another process cleaned or renamed it meanwhile
            pass
    return removed


def atomic_write_text(path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    lead = [c for c in LEADING if c in df.columns]
    tail = [c for c in TRAILING if c in df.columns]
    middle = sorted(c for c in df.columns if c not in lead and c not in tail)
    return df[lead + middle + tail]


def write_parquet(path, rows) -> Path:
    """Write rows (a DataFrame or a list of dicts) to ``path`` atomically."""
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    df = _ordered(df.reset_index(drop=True))
    return atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False, engine="pyarrow"))


def _files(out_dir, prefix: str = "") -> list[Path]:
    root = store_dir(out_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.glob(f"{prefix}*.parquet")]
    if (root / "parts").is_dir():
        found += list((root / "parts").glob(f"{prefix}*.parquet"))
    return sorted(p for p in found if not p.name.startswith("."))


def dedupe(df: pd.DataFrame) -> pd.DataFrame:
    """One row per key: the one written last."""
    if df.empty:
        return df
    if "written_at" in df.columns:
        df = df.sort_values("written_at", kind="stable")
    return df.drop_duplicates(KEY, keep="last").reset_index(drop=True)


def _read(paths: Sequence[Path]) -> pd.DataFrame | None:
    frames = []
    for p in paths:
        try:  # one open file: a writer's rename onto p mid-read cannot mix two files' bytes
            with open(p, "rb") as fh:
                frames.append(pd.read_parquet(fh))
        except FileNotFoundError:
            return None  # folded into a shard file by a concurrent writer: list again
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=LEADING + TRAILING)
    return pd.concat(frames, ignore_index=True, sort=False)


def load_store(out_dir, prefix: str = "") -> pd.DataFrame:
    """All rows under ``<out_dir>/store`` (optionally only files whose name starts with ``prefix``), one per key.

    Columns: see CONTRACTS.md (dataset, model, method, method_hash, config_hash, image_id, label, target, pred,
    status, note, ``<metric>.<key>`` values and ``<metric>.<key>_curve`` lists, completeness_error, seconds,
    passes_fb, passes_f, device, versions, git_commit, seed, shard) plus ``metrics`` (JSON: metric name -> options
    hash of the metrics scored on the row) and ``written_at`` (ns timestamp used to keep the latest row).
    """
    for _ in range(20):
        df = _read(_files(out_dir, prefix))
        if df is not None:
            return _ordered(dedupe(df))
        time.sleep(0.05)
    raise RuntimeError(f"results store {store_dir(out_dir)} kept changing while it was read")


@contextlib.contextmanager
def _locked(path: Path):
    """Exclusive advisory lock (flock) on ``path`` for the block; the OS drops it if the process dies.

    The lock file is removed when the block ends (a clean finish leaves none behind). A waiter that then gets the
    lock of the removed file sees that ``path`` is no longer that file and locks the current one instead, so two
    holders never overlap."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:
            break
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks: go on unlocked
            break
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)  # locked a file that its holder removed meanwhile: lock the one there now
    try:
        yield
        if fcntl is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)
    finally:
        os.close(fd)


class ShardWriter:
    """Writes the rows of one run shard: a part file per batch, folded into the shard file by :meth:`close`."""

    def __init__(self, out_dir, stem: str, shard: tuple[int, int]):
        self.out_dir = Path(out_dir)
        self.stem = stem
        self.name = f"{stem}__{shard_tag(shard)}"
        self.path = store_dir(out_dir) / f"{self.name}.parquet"
        self.parts_dir = store_dir(out_dir) / "parts"

    def write(self, rows: Iterable[dict]) -> Path | None:
        rows = list(rows)
        if not rows:
            return None
        stamp = time.time_ns()
        for r in rows:
            r["written_at"] = stamp
        return write_parquet(self.parts_dir / f"{self.name}__{stamp}-{os.getpid()}.parquet", rows)

    def _my_parts(self) -> list[Path]:
        if not self.parts_dir.is_dir():
            return []
        return sorted(self.parts_dir.glob(f"{self.name}__*.parquet"))

    def close(self) -> Path | None:
        """Fold under an exclusive lock on the shard: two writers of one shard (a requeued job next to its first
        copy) never replace each other's fold with a stale one."""
        with _locked(store_dir(self.out_dir) / f".{self.name}.lock"):
            return self._fold()

    def _fold(self) -> Path | None:
        """Fold this shard's parts (and its previous shard file) into the shard file, then delete the parts.

        Killed between the two steps, the rows are in both places; :func:`load_store` keeps one of each.
        """
        parts = self._my_parts()
        if not parts:
            return self.path if self.path.exists() else None
        files = ([self.path] if self.path.exists() else []) + parts
        df = dedupe(pd.concat([pd.read_parquet(p) for p in files], ignore_index=True, sort=False))
        write_parquet(self.path, df)
        for p in parts:
            p.unlink(missing_ok=True)
        _fsync_dir(self.parts_dir)
        with contextlib.suppress(OSError):  # empty now: no folder left behind (another shard's parts keep it)
            self.parts_dir.rmdir()
        return self.path
