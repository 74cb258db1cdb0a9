"""The goals the speed report checks its measurements against: ``configs/perf/goals.yaml`` (the tools measure; the
targets are data, not code)."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from .rows import _fmt, _in_config, _num

GOALS_FILE = Path(__file__).resolve().parents[3] / "configs" / "perf" / "goals.yaml"


@functools.lru_cache(maxsize=4)
def load_goals(path: str = str(GOALS_FILE)) -> tuple[dict[str, Any], ...]:
    import yaml

    return tuple(yaml.safe_load(Path(path).read_text()).get("goals") or ())


def _verdict(value: float | None, goal: dict[str, Any]) -> str:
    if value is None:
        return "n/a"
    ok = True
    if "at_most" in goal:
        ok = ok and value <= float(goal["at_most"])
    if "at_least" in goal:
        ok = ok and value >= float(goal["at_least"])
    return "PASS" if ok else "FAIL"


def goals(rows, cfg_key, estimate_hours: float | None, path: str | None = None) -> list[tuple[str, str, str]]:
    """[(goal, measured, PASS/FAIL/n.a.)] of the goals file's goals that apply to one configuration's device."""
    device, batch = cfg_key[0], cfg_key[3]
    by = {(r["kind"], r["name"]): r for r in rows if _in_config(r, cfg_key)}

    def get(spec, col=None):
        r = by.get((spec["kind"], spec["name"]))
        return None if r is None or r.get("status") != "ok" else _num(r.get(col or spec["column"]))

    out = []
    for goal in load_goals(path or str(GOALS_FILE)):
        where = goal.get("device", "any")
        if where != "any" and where != ("cpu" if device == "cpu" else "cuda"):
            continue
        spec, label, unit = goal["measure"], goal["label"], goal.get("unit", "x")
        if spec == "estimate_hours":
            value = estimate_hours
        else:
            value = get(spec)
            if value is not None and spec.get("over"):
                below = get(spec, spec["over"])
                value = value / below if value and below else None
        if goal.get("batch") is not None and str(batch) != str(goal["batch"]):
            label += f" (measured at batch {batch})"
        measured = (_fmt(value) + unit) if value else "-"
        ceiling = get(goal["ceiling"]) if goal.get("ceiling") else None
        if value and ceiling:
            note = goal.get("ceiling_note")
            measured += f" (ceiling on this device {_fmt(ceiling)}x" + (f": {note})" if note else ")")
        out.append((label, measured, _verdict(value, goal)))
    return out
