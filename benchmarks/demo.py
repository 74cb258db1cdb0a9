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

Jobs run in ``--workers`` processes side by side (default: one per CPU core, at most 4, each with its share of the
cores' threads: the metrics' loops are mostly single-threaded, so two jobs on two cores take about half the time of
one after another); ``--workers 1`` runs them one after another in this process. Every job is composed with Hydra's
Compose API and writes its own store file; a re-run skips what the store already holds.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any


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


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_job(overrides: list[str]) -> tuple[tuple[int, int], float]:
    """One runner job from its overrides (in a worker process, or in this one): ((evaluated, already done),
    seconds)."""
    from hydra import compose, initialize_config_dir

    from .run import CONFIG_DIR, run

    t = time.perf_counter()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None, job_name="demo"):
        cfg = compose("config", overrides=overrides)
    res = run(cfg, overrides=overrides, finalize_outputs=False)
    return (res.evaluated, res.skipped_done), time.perf_counter() - t


def run_roar_step(overrides: list[str]) -> tuple[dict, float]:
    """ROAR with retraining on MNIST (experiment=roar_mnist) from its overrides: (its counts, seconds)."""
    from hydra import compose, initialize_config_dir

    from .roar import run_roar
    from .run import CONFIG_DIR

    t = time.perf_counter()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None, job_name="demo"):
        cfg = compose("config", overrides=overrides)
    return run_roar(cfg, echo=lambda msg: print(msg, flush=True)), time.perf_counter() - t


def run_all(tasks: list[tuple[str, Any, list[str]]], workers: int) -> None:
    """Run (label, function, overrides) tasks, ``workers`` at a time in spawned processes (or here, one after
    another, for 1), printing a line as each starts (in this process only) and ends; the first failure stops the
    rest and is raised."""
    def done(k, label, fn, result):
        value, seconds = result
        if fn is run_job:
            print(f"[{k}/{len(tasks)}] {label}: {value[0]} images in {seconds:.1f}s ({value[1]} already done)",
                  flush=True)
        else:
            print(f"[{k}/{len(tasks)}] {label}: {value['trained']} retrainings in {seconds:.1f}s ({value['skipped']} "
                  f"already done)", flush=True)

    if workers <= 1:
        for k, (label, fn, ov) in enumerate(tasks, 1):
            print(f"[{k}/{len(tasks)}] {label}", flush=True)
            done(k, label, fn, fn(ov))
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                               initargs=(threads,))
    started, pending = {}, {}
    try:
        for k, (label, fn, ov) in enumerate(tasks, 1):
            fut = pool.submit(fn, ov)
            started[fut], pending[fut] = (k, label, fn), None
        while pending:
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in finished:
                pending.pop(fut)
                k, label, fn = started[fut]
                done(k, label, fn, fut.result())  # raises the job's error
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()


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
    ap.add_argument("--workers", type=int, default=default_workers(),
                    help="jobs run side by side, each in its own process (default: one per CPU core, at most 4)")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the demo needs no network: fail rather than reach for a hub

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import attribution

    from .run import CONFIG_DIR, finalize

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
    workers = max(1, args.workers)
    quiet = [] if workers == 1 or any(o.startswith("progress=") for o in args.overrides) else ["progress=false"]
    tasks = [(f"{suite} / {m}", run_job, [base_ov[0], *suites[suite], *job_overrides(m, variants),
                                          f"out_dir={out_dir}", *quiet, *base_ov[1:]]) for suite, m in jobs]
    if args.roar if args.roar is not None else not (args.methods or args.suites):
        keep = [o for o in args.overrides if o.split("=", 1)[0].split(".")[0] in ("device", "seed", "logger")]
        # first, so that its retrainings run beside the jobs rather than after them
        tasks.insert(0, ("roar (experiment=roar_mnist)", run_roar_step,
                         ["experiment=roar_mnist", f"out_dir={out_dir}", *keep]))
    print(f"demo: {len(jobs)} jobs ({', '.join(suites)} x {len(methods)} methods and variants)"
          f"{' + ROAR' if len(tasks) > len(jobs) else ''} -> {out_dir}, {workers} at a time", flush=True)
    run_all(tasks, workers)
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
