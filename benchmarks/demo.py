"""``make demo``: the embedded offline default, end to end, on the CPU.

Runs ``experiment=demo`` (configs/experiment/demo.yaml) for every suite it lists (real photos with
EfficientNet-Lite0; real MNIST digits with a small CNN and a small VAE) and every registered method and every variant
the experiment lists under ``variants`` (methods under modifiers: IDGI, Expected Gradients, SmoothGrad, XRAI; the
ones that need a VAE on the suites that have one), scoring every metric of ``metrics=demo``; then writes the tables,
figures and report into ``results/demo/`` and prints where they are and the main table.

    python -m benchmarks.demo                          # the whole grid
    python -m benchmarks.demo --suites mnist --methods ig,guided_ig,guided_ig+idgi
    python -m benchmarks.demo device=cuda batch_size=32    # any runner override, applied to every job

The full grid ends with ROAR with retraining on MNIST (experiment=roar_mnist, reduced: minutes on a CPU) into
``results/demo/roar/`` (roar.md, roar.csv, roar.png); ``--no-roar`` skips it, ``--roar`` adds it to a partial run.

Jobs run one after another in this process (Hydra's Compose API); a re-run skips what the store already holds.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def plan_jobs(suites: dict, methods: list[str], vae_of_suite: dict) -> list[tuple[str, str]]:
    """(suite, method or variant) pairs: every one on every suite, except VAE methods where the suite has no VAE."""
    import attribution
    from attribution.modifiers import split_variant

    jobs = []
    for suite in suites:
        for m in methods:
            if attribution.method_info(split_variant(m)[0]).needs_vae and not vae_of_suite[suite]:
                continue
            jobs.append((suite, m))
    return jobs


def runs_variant(variant_suites, suite: str, variant: str) -> bool:
    """Whether ``suite`` runs ``variant``: ``variant_suites`` is None (every suite runs every variant), a list of
    suites (each runs every variant) or a mapping suite -> list of variants, or "all"."""
    if variant_suites is None:
        return True
    if hasattr(variant_suites, "keys"):
        chosen = variant_suites.get(suite)
        return chosen == "all" or (chosen is not None and not isinstance(chosen, str) and variant in chosen)
    return suite in variant_suites


def job_overrides(name: str, variants: dict) -> list[str]:
    """The runner overrides of a job: ``method=<name>``, or a variant's overrides from the experiment's ``variants``."""
    return list(variants[name]) if name in variants else [f"method={name}"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("overrides", nargs="*", help="runner overrides (key=value) applied to every job")
    ap.add_argument("--suites", help="comma-separated suites of configs/experiment/demo.yaml (default: all)")
    ap.add_argument("--methods", help="comma-separated methods and variants of the experiment's `variants` (default: "
                                      "every registered method, then every variant)")
    ap.add_argument("--experiment", default="demo", help="the experiment config to run (default: demo)")
    ap.add_argument("--roar", action=argparse.BooleanOptionalAction, default=None,
                    help="also run ROAR with retraining on MNIST (experiment=roar_mnist, into <out_dir>/roar; default: "
                         "only when neither --suites nor --methods is given)")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the demo needs no network: fail rather than reach for a hub

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import attribution

    from .run import CONFIG_DIR, finalize, run

    t0 = time.perf_counter()
    base_ov = [f"experiment={args.experiment}", *args.overrides]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None, job_name="demo"):
        base = compose("config", overrides=base_ov)
        suites = {k: list(v) for k, v in OmegaConf.to_container(base.get("suites") or {}).items()}
        if not suites:
            suites = {"default": []}
        if args.suites:
            wanted = args.suites.split(",")
            unknown = sorted(set(wanted) - set(suites))
            if unknown:
                ap.error(f"unknown suite(s) {unknown}; choose from {sorted(suites)}")
            suites = {k: suites[k] for k in wanted}
        variants = {k: list(v) for k, v in OmegaConf.to_container(base.get("variants") or {}).items()}
        known = attribution.available_methods() + list(variants)
        methods = args.methods.split(",") if args.methods else known
        for m in methods:
            if m not in known:
                ap.error(f"unknown method or variant {m!r}; choose from {known}")
        vae_of = {s: compose("config", overrides=[*base_ov[:1], *ov, *base_ov[1:]]).get("vae") for s, ov in
                  suites.items()}
        jobs = plan_jobs(suites, methods, vae_of)
        jobs = [(s, m) for s, m in jobs if m not in variants or runs_variant(base.get("variant_suites"), s, m)]
        out_dir = Path(str(base.out_dir)).expanduser().resolve()
        print(f"demo: {len(jobs)} jobs ({', '.join(suites)} x {len(methods)} methods and variants) -> {out_dir}",
              flush=True)
        for k, (suite, m) in enumerate(jobs, 1):
            ov = [base_ov[0], *suites[suite], *job_overrides(m, variants), f"out_dir={out_dir}", *base_ov[1:]]
            cfg = compose("config", overrides=ov)
            t = time.perf_counter()
            print(f"[{k}/{len(jobs)}] {suite} / {m}", flush=True)
            res = run(cfg, overrides=ov, finalize_outputs=False)
            print(f"[{k}/{len(jobs)}] {suite} / {m}: {res.evaluated} images in {time.perf_counter() - t:.1f}s"
                  f" ({res.skipped_done} already done)", flush=True)
        if args.roar if args.roar is not None else not (args.methods or args.suites):
            from .roar import run_roar

            t = time.perf_counter()
            keep = [o for o in args.overrides if o.split("=", 1)[0].split(".")[0] in ("device", "seed", "logger")]
            res = run_roar(compose("config", overrides=["experiment=roar_mnist", f"out_dir={out_dir}", *keep]),
                           echo=lambda msg: print(msg, flush=True))
            print(f"roar: {res['trained']} retrainings in {time.perf_counter() - t:.1f}s ({res['skipped']} already "
                  f"done); table in {out_dir / 'roar' / 'roar.md'}", flush=True)
    print("writing tables, figures and report ...", flush=True)
    logger_cfg = OmegaConf.to_container(base.logger, resolve=True) if base.get("logger") else None
    for line in finalize(out_dir, logger_cfg):  # logger=wandb: the report's tables and charts as a W&B run too
        print("  " + line)
    from .report.screenshot import take

    print("  " + take(out_dir), flush=True)  # report.png by headless Chromium, where it is installed
    table = out_dir / "table.md"
    if table.exists():
        print("\n" + table.read_text())
    if (out_dir / "roar" / "roar.md").exists():
        print("\n" + (out_dir / "roar" / "roar.md").read_text())
    print(f"demo finished in {time.perf_counter() - t0:.0f}s. Outputs in {out_dir}:")
    for p in sorted(out_dir.iterdir()):
        if p.name not in ("cache", "store"):
            print(f"  {p.relative_to(out_dir.parent)}{'/' if p.is_dir() else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
