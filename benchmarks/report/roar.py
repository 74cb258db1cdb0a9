"""The ROAR table and figure: test accuracy of the classifier retrained after removing the top r of pixels, per map
and ratio (lower is better), with a 95% bootstrap interval over the test images, and the area under the accuracy
curve (trapezoid over the ratios, as the SIG authors' ``np.trapz``).

    python -m benchmarks.report.roar results/roar_mnist/roar     # roar.md, roar.csv, roar.png in that folder

Reads the ROAR store (``<out_dir>/roar/store``, :mod:`benchmarks.roar`). Methods are ranked by their AUC; the line
under the table says where the random map ranks (a method that does not beat it carries no information ROAR sees).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.store import atomic_write, atomic_write_text, load_store
from .stats import bootstrap_ci

CONTROLS = ("random", "none")


def display(name: str) -> str:
    """A map's label: the registered display name, "(blurred)" for the blur control, "Unmodified" for ratio 0."""
    import attribution

    if name == "none":
        return "Unmodified (r = 0)"
    base, blur = (name[:-5], True) if name.endswith("+blur") else (name, False)
    try:
        label = attribution.method_info(base).display
    except Exception:  # noqa: BLE001 - a name the registry no longer has keeps its own
        label = base
    return f"{label} (blurred)" if blur else label


#: what a table section is: one dataset and model under one setting (fill value, test images modified or not)
GROUP = ["dataset", "model", "fill", "test_images"]


def roar_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, model, fill, test images, map, ratio): accuracy, its interval over the test images,
    n, trainings. The unmodified reference (map ``none``, nothing filled) appears under every fill."""
    df = df[df["status"] == "ok"].copy()
    df["fill"] = df["roar.fill"].fillna("") if "roar.fill" in df.columns else "channel_mean"
    df["test_images"] = df["roar.test_images"].fillna("modified") if "roar.test_images" in df.columns else "modified"
    fills = sorted(set(df.loc[df["method"] != "none", "fill"])) or ["channel_mean"]
    ref = df[df["method"] == "none"]
    df = pd.concat([df[df["method"] != "none"]] + [ref.assign(fill=f) for f in fills], ignore_index=True)
    rows = []
    for (ds, model, fill, test, m, r), g in df.groupby(GROUP + ["method", "roar.ratio"], sort=True):
        est, lo, hi, n = bootstrap_ci(g["roar.correct"].to_numpy(float))
        rows.append({"dataset": ds, "model": model, "fill": fill, "test_images": test, "method": m,
                     "ratio": float(r), "accuracy": est, "lo": lo, "hi": hi, "n": n,
                     "trainings": int(g["roar.repeat"].nunique())})
    return pd.DataFrame(rows)


def auc_table(t: pd.DataFrame) -> pd.DataFrame:
    """Area under accuracy(r) per map over the ratios it was trained at (the unmodified row excluded; with a single
    ratio, the accuracy there), ranked (1 = lowest)."""
    rows = []
    for (*key, m), g in t[t["method"] != "none"].groupby(GROUP + ["method"]):
        g = g.sort_values("ratio")
        x, y = g["ratio"].to_numpy(), g["accuracy"].to_numpy()
        auc = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2)) if len(x) > 1 else float(y[0])
        rows.append({**dict(zip(GROUP, key)), "method": m, "auc": auc, "ratios": len(x)})
    out = pd.DataFrame(rows)
    if len(out):
        out["rank"] = out.groupby(GROUP)["auc"].rank(method="min").astype(int)
    return out


def _fmt(row) -> str:
    if np.isfinite(row["lo"]):
        return f"{row['accuracy']:.3f} [{row['lo']:.3f}, {row['hi']:.3f}]"
    return f"{row['accuracy']:.3f}"


def random_verdict(auc: pd.DataFrame) -> list[str]:
    """Per section: where the random map ranks by AUC among the maps (last = every method beats it)."""
    lines = []
    for key, g in auc.groupby(GROUP):
        if "random" not in set(g["method"]):
            continue
        others = g[g["method"] != "random"]
        not_better = sorted(others.loc[others["auc"] >= float(g.loc[g["method"] == "random", "auc"].iloc[0]),
                                   "method"])
        rank, n = int(g.loc[g["method"] == "random", "rank"].iloc[0]), len(g)
        verdict = "last: every map removes more information than it" if not not_better else (
            f"not last: {', '.join(display(m) for m in not_better)} hurt(s) accuracy no more than the random map")
        lines.append(f"{_title(key)}: the random map ranks {rank} of {n} by AUC ({verdict}).")
    return lines


def _title(key) -> str:
    ds, model, fill, test = key
    how = {"channel_mean": "per-channel mean fill (Hooker et al.)", "kept_mean": "mean-of-kept fill (the SIG "
           "authors)"}.get(fill, f"fill {fill}")
    return f"{ds} / {model}, {how}, {test} test images"


def _section(frame: pd.DataFrame, key) -> pd.DataFrame:
    sel = np.ones(len(frame), dtype=bool)
    for col, v in zip(GROUP, key):
        sel &= (frame[col] == v).to_numpy()
    return frame[sel]


def to_markdown(t: pd.DataFrame, auc: pd.DataFrame) -> str:
    out = ["# ROAR: accuracy after removing the top r of pixels and retraining (lower is better)", "",
           "Hooker et al. 2019: per map and ratio a classifier is trained from scratch on images whose most salient "
           "pixels were replaced by the section's fill (the per-channel mean of the training images, or the mean of "
           "each image's kept pixels); accuracy on the test images (95% bootstrap interval over them). AUC: "
           "trapezoid over r. Controls: Random (a random map), (blurred) (the map blurred: ROAR favours smooth maps), "
           "Unmodified (r = 0).", ""]
    for key, g in t.groupby(GROUP):
        ratios = sorted(g.loc[g["method"] != "none", "ratio"].unique())
        a = _section(auc, key).set_index("method")
        order = sorted(set(g["method"]), key=lambda m: (m == "none", a["auc"].get(m, np.inf), m))
        out += [f"## {_title(key)}", "", "| Map | " + " | ".join(f"r = {r:g}" for r in ratios) + " | AUC↓ | rank |",
                "|---|" + "---|" * (len(ratios) + 2)]
        for m in order:
            cells = []
            for r in ratios:
                hit = g[(g["method"] == m) & (np.isclose(g["ratio"], r))]
                cells.append(_fmt(hit.iloc[0]) if len(hit) else "")
            if m == "none":
                hit = g[g["method"] == "none"].iloc[0]
                cells = [_fmt(hit)] + [""] * (len(ratios) - 1)
            auc_v = a["auc"].get(m, np.nan)
            rank = a["rank"].get(m, "") if m in a.index else ""
            out.append(f"| {display(m)} | " + " | ".join(cells) + f" | {'' if np.isnan(auc_v) else f'{auc_v:.3f}'} "
                       f"| {rank} |")
        n = int(g["n"].max())
        out += ["", f"{n} test images per cell; {int(g['trainings'].max())} training(s) per cell."]
        out += [""] + random_verdict(_section(auc, key)) + [""]
    return "\n".join(out).rstrip() + "\n"


def figure(t: pd.DataFrame, path: Path) -> Path | None:
    """Accuracy against r per map (one panel per dataset x model); the unmodified accuracy as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(t.groupby(GROUP))
    if not groups:
        return None
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4.2), squeeze=False)
    for ax, (key, g) in zip(axes[0], groups):
        for m, h in g[g["method"] != "none"].groupby("method"):
            h = h.sort_values("ratio")
            style = ":" if m.endswith("+blur") else ("--" if m == "random" else "-")
            ax.errorbar(h["ratio"], h["accuracy"], yerr=[h["accuracy"] - h["lo"].fillna(h["accuracy"]),
                                                         h["hi"].fillna(h["accuracy"]) - h["accuracy"]],
                        ls=style, marker="o", ms=3, capsize=2, label=display(m))
        if (g["method"] == "none").any():
            ax.axhline(float(g.loc[g["method"] == "none", "accuracy"].iloc[0]), color="grey", ls="--", lw=0.8,
                       label=display("none"))
        ax.set_title(_title(key).replace(", ", "\n", 1), fontsize=8)
        ax.set(xlabel="fraction of pixels removed r", ylabel="test accuracy (lower is better)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def write_roar_tables(roar_dir) -> list[Path]:
    """roar.md, roar.csv (one row per map x ratio, with AUC and rank) and roar.png in ``roar_dir``."""
    roar_dir = Path(roar_dir)
    df = load_store(roar_dir)
    if not len(df) or "roar.correct" not in df.columns:
        return []
    t = roar_table(df)
    auc = auc_table(t)
    csv = t.merge(auc[GROUP + ["method", "auc", "rank"]], on=GROUP + ["method"], how="left")
    written = [atomic_write_text(roar_dir / "roar.md", to_markdown(t, auc)),
               atomic_write(roar_dir / "roar.csv", lambda tmp: csv.to_csv(tmp, index=False, float_format="%.6g"))]
    fig = figure(t, roar_dir / "roar.png")
    return written + ([fig] if fig else [])


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m benchmarks.report.roar <out_dir>/roar", file=sys.stderr)
        return 2
    written = write_roar_tables(args[0])
    if not written:
        print(f"no ROAR rows under {args[0]}/store: run python -m benchmarks.roar experiment=... first",
              file=sys.stderr)
        return 1
    for p in written:
        print(p)
    print("\n" + (Path(args[0]) / "roar.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
