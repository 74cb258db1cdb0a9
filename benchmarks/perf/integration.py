"""Quality per compute of the integration rules and step spacings (:mod:`attribution.engine.rules`) on real weights.

For IG and SIG on the embedded photos (EfficientNet-Lite0, ImageNet weights; ``configs/experiment/demo.yaml``) and
each (rule, spacing) at several step counts, per image: the completeness error |sum A - (f(x) - f(b))| / |f(x) - f(b)|
and DiffID, against the classifier passes the attribution took (forward+backward and forward-only rows, counted).
The reference is the papers' uniform left sum at 200 steps; the goal (``--goal-steps``, default 50): a rule or
spacing that reaches the reference's median completeness error with at most that many steps.

    python -m benchmarks.perf.integration                       # CPU, both methods, the default grid
    python -m benchmarks.perf.integration --methods ig --steps 8,16,32 --device cuda

Writes ``results/integration/<device>.csv``, ``.md`` and ``.png`` (completeness error against passes).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

GRID = [("left", "uniform"), ("right", "uniform"), ("middle", "uniform"), ("trapezoid", "uniform"),
        ("gausslegendre", "uniform"), ("left", "adaptive"), ("middle", "adaptive"), ("trapezoid", "adaptive")]
REFERENCE = ("left", "uniform", 200)


def run(methods, steps, device, n_images, log=print) -> list[dict]:
    import attribution
    from attribution import PassCounter

    from .precision import load_suite, method_options, suite_overrides

    ov = suite_overrides("photos", device)
    setup, _, x, y = load_suite(ov)
    x, y = x[:n_images], y[:n_images]
    model = setup.classifier.model
    extra = {"mean": tuple(setup.classifier.mean), "std": tuple(setup.classifier.std)}
    diffid = attribution.build_metric("diffid")
    rows = []
    for name in methods:
        cases = [(r, s, n) for r, s in GRID for n in steps] + [REFERENCE]
        for rule, spacing, n in dict.fromkeys(cases):
            kw = {**method_options(ov, name, n), **extra, "rule": rule, "spacing": spacing}
            method = attribution.build_method(name, **kw)
            t0 = time.perf_counter()
            with PassCounter(model) as pc:
                out = method.attribute(model, x, y)
            seconds = (time.perf_counter() - t0) / len(x)
            scores = diffid(model, x, out.attr, y)
            for i in range(len(x)):
                rows.append({"device": device, "method": name, "rule": rule, "spacing": spacing, "n_steps": n,
                             "image": i, "fb": pc.fb / len(x), "f": pc.f / len(x),
                             "completeness_error": float(out.completeness[i]),
                             "diffid": float(scores["diffid"][i]), "seconds": seconds})
            c = out.completeness.median().item()
            log(f"{name} {rule}/{spacing} n={n}: median completeness error {c:.2e}, fb {pc.fb / len(x):.0f}, "
                f"f {pc.f / len(x):.0f}, {seconds:.2f} s/img")
    return rows


def summarise(df, goal_steps: int):
    """Per (method, rule, spacing, n_steps): medians and means; and per method the reference's median error and the
    fewest steps each (rule, spacing) needs to reach it."""
    g = df.groupby(["method", "rule", "spacing", "n_steps"], sort=False)
    table = g.agg(fb=("fb", "first"), f=("f", "first"), completeness_median=("completeness_error", "median"),
                  diffid_mean=("diffid", "mean"), seconds=("seconds", "first")).reset_index()
    goals = []
    for method, t in table.groupby("method", sort=False):
        ref = t[(t.rule == REFERENCE[0]) & (t.spacing == REFERENCE[1]) & (t.n_steps == REFERENCE[2])]
        target = float(ref.completeness_median.iloc[0])
        for (rule, spacing), s in t.groupby(["rule", "spacing"], sort=False):
            reached = s[(s.completeness_median <= target) & ~((s.rule == REFERENCE[0]) & (s.spacing == REFERENCE[1])
                                                              & (s.n_steps == REFERENCE[2]))]
            fewest = int(reached.n_steps.min()) if len(reached) else None
            goals.append({"method": method, "rule": rule, "spacing": spacing, "reference_error": target,
                          "fewest_steps": fewest, "meets_goal": fewest is not None and fewest <= goal_steps})
    import pandas as pd

    return table, pd.DataFrame(goals)


def render(table, goals, goal_steps: int, command: str, n_images: int) -> str:
    lines = ["# Integration rules and step spacings: quality per compute", "",
             f"IG and SIG (authors' settings but the steps) on the {n_images} embedded photos, EfficientNet-Lite0. "
             "Completeness error: median over images; DiffID: mean; passes: counted classifier rows per image "
             "(fb: forward+backward, f: forward only). Every rule takes n_steps - 1 gradient evaluations; the adaptive "
             "spacing adds forward-only probes.", "",
             f"Goal: reach the median completeness error of the uniform left sum at {REFERENCE[2]} steps with at most "
             f"{goal_steps} steps.", "", "| method | rule | spacing | fewest steps reaching the reference | goal |",
             "| --- | --- | --- | ---: | --- |"]
    for r in goals.itertuples():
        fewest = "not within the grid" if r.fewest_steps is None or r.fewest_steps != r.fewest_steps else (
            str(int(r.fewest_steps)))
        lines.append(f"| {r.method} | {r.rule} | {r.spacing} | {fewest} | {'met' if r.meets_goal else 'not met'} |")
    lines += ["", "Reference errors: " + ", ".join(
        f"{m} {e:.2e}" for m, e in goals.groupby("method").reference_error.first().items()), "",
        "| method | rule | spacing | n_steps | fb | f | completeness error (median) | DiffID (mean) | s/img |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in table.itertuples():
        lines.append(f"| {r.method} | {r.rule} | {r.spacing} | {r.n_steps} | {r.fb:.0f} | {r.f:.0f} | "
                     f"{r.completeness_median:.2e} | {r.diffid_mean:.4f} | {r.seconds:.2f} |")
    lines += ["", "Measured with:", "", f"    {command}", ""]
    return "\n".join(lines)


def figure(table, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(table.method))
    fig, axes = plt.subplots(1, len(methods), figsize=(6 * len(methods), 4.2), squeeze=False)
    for ax, m in zip(axes[0], methods):
        t = table[table.method == m]
        for (rule, spacing), s in t.groupby(["rule", "spacing"], sort=False):
            s = s.sort_values("fb")
            ax.plot(s.fb + s.f, s.completeness_median, marker="o" if spacing == "uniform" else "s",
                    ls="-" if spacing == "uniform" else "--", label=f"{rule}/{spacing}")
        ref = t[(t.rule == REFERENCE[0]) & (t.spacing == REFERENCE[1]) & (t.n_steps == REFERENCE[2])]
        ax.axhline(float(ref.completeness_median.iloc[0]), color="k", lw=0.8, ls=":", label="left/uniform, 200")
        ax.set(xscale="log", yscale="log", xlabel="classifier passes per image", ylabel="completeness error (median)",
               title=m.upper())
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    import pandas as pd

    from .speed import device_tag

    ap = argparse.ArgumentParser(prog="python -m benchmarks.perf.integration", description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default="ig,sig")
    ap.add_argument("--steps", default="8,16,24,32,50", help="n_steps of every rule (the reference adds 200)")
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--goal-steps", type=int, default=50)
    ap.add_argument("--out", default="results/integration")
    args = ap.parse_args(argv)
    steps = [int(s) for s in args.steps.split(",")]
    rows = run(args.methods.split(","), steps, args.device, args.images)
    df = pd.DataFrame(rows)
    tag = device_tag(torch.device(args.device))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / f"{tag}.csv", index=False)
    table, goals = summarise(df, args.goal_steps)
    command = "python -m benchmarks.perf.integration " + " ".join(argv if argv is not None else sys.argv[1:])
    (out / f"{tag}.md").write_text(render(table, goals, args.goal_steps, command.strip(), args.images))
    figure(table, out / f"{tag}.png")
    print((out / f"{tag}.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
