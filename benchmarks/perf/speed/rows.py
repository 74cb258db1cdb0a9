"""Rows of the speed CSV: read, merge by key, write; the configuration key; number formatting for the reports."""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

from .cli import COLUMNS, CONFIG_KEY, KEY


def _key(row: dict[str, Any], cols=KEY) -> tuple[str, ...]:
    return tuple(str(row.get(k, "")) for k in cols)


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def merge_rows(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of ``new`` replace rows of ``old`` with the same key; the others are kept (old first)."""
    fresh = {_key(r) for r in new}
    return [r for r in old if _key(r) not in fresh] + list(new)


def write_csv(path: Path, rows: list[dict[str, Any]]):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _csv_value(r.get(k, "")) for k in COLUMNS})
    os.replace(tmp, path)


def _csv_value(v):
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.6g}"
    return v


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join((_fmt(v) if not isinstance(v, str) else v).replace("|", "/") for v in r) + " |")
    return "\n".join(out)


def _configs(rows) -> list[tuple[str, ...]]:
    seen = []
    for r in rows:
        if r.get("kind") in ("method", "metric"):
            k = _key(r, CONFIG_KEY)
            if k not in seen:
                seen.append(k)
    return seen


def _in_config(r, cfg_key) -> bool:
    return _key(r, CONFIG_KEY) == cfg_key


def calibration_times(rows, device: str, model: str, size: int, autocast: str, channels_last: str):
    out = {}
    for r in rows:
        if (r.get("kind") == "calibration" and r.get("device") == device and r.get("model") == model
                and str(r.get("image_size")) == str(size) and str(r.get("autocast")) == str(autocast)
                and str(r.get("channels_last")) == str(channels_last)):
            v = _num(r.get("sec_per_image"))
            if v is not None:
                out[r["name"][len("cal."):]] = v
    return out


def _vae_times(rows, device, size, autocast, channels_last):
    out = {}
    for r in rows:
        if (r.get("kind") == "calibration" and r.get("device") == device and str(r.get("image_size")) == str(size)
                and r.get("name", "").startswith(("cal.decoder", "cal.encoder"))
                and str(r.get("autocast")) == str(autocast) and str(r.get("channels_last")) == str(channels_last)):
            out[r["name"][len("cal."):]] = _num(r.get("sec_per_image"))
    return {k: v for k, v in out.items() if v is not None}


def _fmt(v, digits=3):
    if v is None or v == "" or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 100:
            return f"{v:.0f}"
        return f"{v:.{digits}g}"
    return str(v)
