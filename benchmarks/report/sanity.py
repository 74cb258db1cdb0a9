"""The sanity-check verdict table: per method, the similarity after randomisation with its interval, and whether the
method passes (``sanity.md``, ``sanity.csv`` beside table.md; written by :func:`benchmarks.report.table.write_bundle`).

Pass rules (stated in the table's footnote):

- similarity checks (``mprt``, ``smooth_mprt``: the model fully randomised; ``random_logit``: another class): the
  method passes when the upper end of the 95% interval of the mean similarity is below :data:`SIMILARITY_BELOW`
  (0.5): its map demonstrably changes with what it explains. Where no interval is shown (fewer than 10 images) the
  mean is compared instead and the verdict is marked "(mean)".
- ``efficient_mprt`` (relative entropy rise): the method passes when the interval's lower end is above 0: the map
  becomes demonstrably noisier when the model is randomised.

Robustness metrics have no pass rule (the tables give their values). MPRT and random logit reward noise (a map that
is fresh noise on every call scores near 0); read them with eMPRT, which a noise map fails.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .names import display_method, display_model

#: a similarity check passes when its interval (or mean) lies below this
SIMILARITY_BELOW = 0.5
#: metric key -> (label, rule): "similarity" (lower passes) or "rise" (above 0 passes)
CHECKS = {"mprt": ("MPRT", "similarity"), "smooth_mprt": ("sMPRT", "similarity"),
          "random_logit": ("Random logit", "similarity"), "efficient_mprt": ("eMPRT", "rise")}


def verdict(mean: float, lo: float, hi: float, rule: str) -> tuple[str, str]:
    """("pass" | "fail" | "", "" | "(mean)") for one cell."""
    if not math.isfinite(mean):
        return "", ""
    if rule == "similarity":
        bound, ok = (hi, True) if math.isfinite(hi) else (mean, False)
        passed = bound < SIMILARITY_BELOW
    else:
        bound, ok = (lo, True) if math.isfinite(lo) else (mean, False)
        passed = bound > 0
    return ("pass" if passed else "fail"), ("" if ok else "(mean)")


def sanity_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """The sanity rows of :func:`benchmarks.report.table.summarize`'s long frame, with ``check``, ``verdict``."""
    cols = ["dataset", "model", "variant", "check", "column", "mean", "lo", "hi", "n", "verdict", "basis"]
    if summary is None or summary.empty:
        return pd.DataFrame(columns=cols)
    key = summary["column"].astype(str).str.split(".", n=1).str[-1]
    rows = summary[key.isin(list(CHECKS))].drop_duplicates(["dataset", "model", "variant", "column"])
    out = []
    for r, k in zip(rows.itertuples(index=False), key[rows.index]):
        label, rule = CHECKS[k]
        v, basis = verdict(float(r.mean), float(r.lo), float(r.hi), rule)
        out.append(dict(dataset=r.dataset, model=r.model, variant=r.variant, check=label, column=r.column,
                        mean=r.mean, lo=r.lo, hi=r.hi, n=int(r.n), verdict=v, basis=basis))
    return pd.DataFrame(out, columns=cols)


def _cell(r) -> str:
    if not math.isfinite(r.mean):
        return "-"
    ci = f" [{r.lo:.2f}, {r.hi:.2f}]" if math.isfinite(r.lo) and math.isfinite(r.hi) else f" (n={r.n})"
    return f"{r.mean:.2f}{ci} {r.verdict}{(' ' + r.basis) if r.basis else ''}"


def sanity_markdown(frame: pd.DataFrame) -> str:
    """One table per dataset: rows = methods, columns = model x check."""
    if frame.empty:
        return ""
    parts = []
    for dataset, d in frame.groupby("dataset", sort=False):
        heads = list(dict.fromkeys(zip(d["model"], d["check"])))
        parts.append(f"### {dataset} — sanity checks\n")
        parts.append("| Method | " + " | ".join(f"{display_model(m)} {c}" for m, c in heads) + " |")
        parts.append("| --- |" + " ---: |" * len(heads))
        for variant, g in d.groupby("variant", sort=False):
            cells = {(r.model, r.check): _cell(r) for r in g.itertuples(index=False)}
            parts.append(f"| {display_method(variant)} | " + " | ".join(cells.get(h, "-") for h in heads) + " |")
        parts.append("")
        parts.append(f"Mean similarity after randomisation [95% bootstrap interval] (eMPRT: relative entropy rise). "
                     f"pass: MPRT, sMPRT, Random logit when the interval's upper end is below {SIMILARITY_BELOW}; "
                     f"eMPRT when its lower end is above 0; (mean): fewer than 10 images, the mean is compared. "
                     f"MPRT and Random logit also pass a map of fresh noise: read them with eMPRT.\n")
    return "\n".join(parts) + "\n"


def write_sanity(summary: pd.DataFrame, out_dir) -> dict[str, Path]:
    """Write ``sanity.md`` and ``sanity.csv`` into ``out_dir`` where the summary has sanity columns (else remove
    any left by an earlier call); returns {file name: path}."""
    frame = sanity_frame(summary)
    paths = {}
    for name, text in (("sanity.md", sanity_markdown(frame)),
                       ("sanity.csv", frame.to_csv(index=False, lineterminator="\n") if len(frame) else "")):
        p = Path(out_dir) / name
        if not text:
            p.unlink(missing_ok=True)
            continue
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(p)
        paths[name] = p
    return paths


__all__ = ["CHECKS", "SIMILARITY_BELOW", "sanity_frame", "sanity_markdown", "verdict", "write_sanity"]
