"""``python -m benchmarks.sweep <sweep dir | out_dir>``: a sweep's progress without its launcher.

From the results store: the images each (dataset, model, method) has, by shard, against the manifest, and the
batches of shards still at work (``store/parts``). From the queue, where the folder is a sweep folder of the
``slurm`` launchers (it holds ``sweep.json``) and SLURM answers: each task's state, with the log paths of the
tasks that failed. Reads only; exits 0.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import slurm


def store_lines(out_dir: Path) -> list[str]:
    """One line per (dataset, model, method config): images stored, by shard, of the manifest's images."""
    from ..io.store import load_store, store_dir

    totals = {}
    for m in sorted(out_dir.glob("manifest_*.json")):
        try:
            data = json.loads(m.read_text())
            totals[str(data.get("name"))] = len(data.get("ids") or [])
        except (OSError, ValueError):
            continue
    df = load_store(out_dir)
    if df.empty:
        return [f"store {store_dir(out_dir)}: no rows yet"]
    lines = [f"store {store_dir(out_dir)}: {len(df)} rows"]
    for (dataset, model, method, mhash), g in df.groupby(["dataset", "model", "method", "method_hash"], sort=True):
        shards = ", ".join(f"{s} {n}" for s, n in g.groupby("shard").size().items())
        of = f" of {totals[dataset]}" if dataset in totals else ""
        ok = int((g["status"] == "ok").sum()) if "status" in g.columns else len(g)
        lines.append(f"  {dataset} / {model} / {method} [{str(mhash)[:7]}]: {g['image_id'].nunique()}{of} images "
                     f"({ok} ok; by shard: {shards})")
    parts = sorted((store_dir(out_dir) / "parts").glob("*.parquet")) if (store_dir(out_dir) / "parts").is_dir() else []
    if parts:
        names = sorted({p.name.split("__shard")[0].split("__")[-1] + " shard" + p.name.split("__shard")[1]
                        .split("__")[0] for p in parts})
        lines.append(f"  at work (batches not folded yet): {', '.join(names)}")
    return lines


def queue_lines(record: dict) -> list[str]:
    """One line per task of a recorded sweep: its live state where SLURM answers, else the recorded outcome."""
    tasks = record.get("tasks") or []
    live = {}
    note = ""
    if slurm.available():
        try:
            live = slurm.task_states(t["job_id"] for t in tasks)
        except slurm.SlurmError as e:
            note = f" (queue not readable: {e})"
    else:
        note = " (no SLURM client here: states as the launcher last recorded them)"
    lines = [f"tasks{note}:"]
    counts: dict[str, int] = {}
    for t in tasks:
        state, reason = live.get(t["job_id"], (t.get("state") or "?", ""))
        if t.get("outcome") == "failed":
            state = f"FAILED ({t.get('why')}); logs: {t['stdout']}, {t['stderr']}"
        elif t.get("outcome") == "ok" and state not in slurm.TERMINAL:
            state = "COMPLETED"
        counts[state.split()[0]] = counts.get(state.split()[0], 0) + 1
        why = f" ({reason})" if state == "PENDING" and reason not in ("", "None") else ""
        lines.append(f"  #{t['index']} {t['overrides']}: job {t['job_id']} {state}{why}")
    lines.append("  " + ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())))
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.sweep", description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", help="a sweep folder (hydra.sweep.dir, holds sweep.json) or a results folder (out_dir)")
    a = ap.parse_args(argv)
    folder = Path(a.folder).expanduser()
    record_path = folder / "sweep.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        out_dir = Path(record["out_dir"])
        print(f"sweep {folder} (submitted {record.get('submitted_at')}; launcher log {record.get('launcher_log')})"
              f" -> results {out_dir}")
    elif (folder / "store").is_dir() or folder.is_dir():
        record, out_dir = None, folder
    else:
        print(f"benchmarks.sweep: {folder} is neither a sweep folder (sweep.json) nor a results folder (store/)",
              file=sys.stderr)
        return 2
    for line in store_lines(out_dir):
        print(line)
    if record is not None:
        for line in queue_lines(record):
            print(line)
    return 0
