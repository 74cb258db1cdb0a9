"""``python -m benchmarks.roar experiment=roar_mnist``: ROAR with retraining (Hooker et al., NeurIPS 2019).

A thin Hydra app (the runner's config tree, ``configs/config.yaml``, with an experiment that has a ``roar`` block):
plan (:mod:`.plan`, every key checked first) -> data -> base model -> attribution maps of the training (and test)
images per method -> one classifier retrained from scratch per (map, ratio) -> one row per test image in
``<out_dir>/roar/store`` -> ``roar.md`` / ``roar.csv`` / ``roar.png`` (:mod:`benchmarks.report.roar`).

    python -m benchmarks.roar experiment=roar_mnist                       # every job, one after another
    python -m benchmarks.roar -m experiment=roar_cifar10 hydra/launcher=slurm hydra.launcher.partition=gpu
                                                                          # one SLURM job per (method, ratio)
"""
from __future__ import annotations

import logging
import time
from typing import Any

import torch

from . import plan as P
from . import stages

log = logging.getLogger("benchmarks.roar")


def run_roar(cfg, write_tables: bool = True, echo=None) -> dict[str, Any]:
    """Run the ROAR jobs of a resolved config (all of them, or the one ``roar.method``/``roar.ratio`` pick).
    Returns {"trained": n, "skipped": n, "accuracy": {(map, ratio, repeat, fill): acc}, "seconds": s}."""
    from omegaconf import DictConfig, OmegaConf

    from ..assets.embedded import deterministic
    from ..run.config import seed_everything, select_device

    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    cfg = {k: v for k, v in cfg.items() if k != "hydra"}
    r = P.check(cfg)
    device = select_device(cfg.get("device", "auto"))
    for name in sorted({P.base_method(m) for m in P.all_maps(r) if m != P.NONE}):
        import attribution

        attribution.build_method(name, **stages.method_config(cfg, name))  # every option checked before any work
    out = P.roar_dir(cfg)
    say = echo or (lambda msg: log.info("%s", msg))
    t0 = time.perf_counter()
    seed_everything(int(cfg.get("seed") or 0))
    norm = stages.normalizer(cfg)
    ds_name, train_ids, train_px, train_y = stages.load_split(cfg, r["train_split"], r["train_size"])
    _, test_ids, test_px, test_y = stages.load_split(cfg, r["test_split"], r["test_size"])
    data = {"dataset": ds_name, "train_ids": train_ids, "test_ids": test_ids,
            "train_x": norm.normalize(train_px.to(device)), "train_y": train_y.to(device),
            "test_x": norm.normalize(test_px.to(device)), "test_y": test_y.to(device)}
    todo, skipped = [], 0
    for job in P.jobs(r):
        stem, _ = stages.job_stem(cfg, ds_name, job)
        if stages.is_done(out, stem, len(test_ids)):
            skipped += 1
        else:
            todo.append(job)
    say(f"roar: {len(todo)} retrainings to do ({skipped} already stored), {len(train_ids)} training / "
        f"{len(test_ids)} test images -> {out}")
    accs: dict = {}
    logger = _logger(cfg, out) if todo else None
    # training under deterministic algorithms (seeded, repeatable); the maps outside it, as the runner computes
    # them (deterministic kernels slow the methods' batched gradients several-fold on the CPU)
    repeatable = lambda: deterministic(int(cfg.get("seed") or 0), threads=torch.get_num_threads())  # noqa: E731
    if todo:
        with repeatable():
            model = stages.base_model(cfg, out, device, data)
        for p in model.parameters():
            p.requires_grad_(False)
        sal = {}
        bank = data["train_x"][:int(cfg.get("reference_bank") or 100)]
        for name in dict.fromkeys(P.base_method(j.map) for j in todo if j.map != P.NONE):
            for split in ["train"] + (["test"] if r["modify_test"] else []):
                sal[f"{split}/{name}"] = stages.saliency(cfg, out, name, split, model, data[f"{split}_x"],
                                                         data[f"{split}_ids"], data[f"{split}_y"], bank=bank)
        for k, job in enumerate(todo, 1):
            t = time.perf_counter()
            with repeatable():
                acc = stages.run_job(cfg, out, job, data, sal, logger)
                accs[(job.map, job.ratio, job.repeat, job.fill)] = acc
                fill = f" fill={job.fill}" if job.fill else ""
                say(f"roar [{k}/{len(todo)}] {job.map} r={job.ratio:g}{fill}: test accuracy {acc:.3f} "
                    f"({time.perf_counter() - t:.1f}s)")
    if logger is not None:  # this invocation's rows as the per-image table, each job's accuracy in the summary
        from ..io.store import load_store

        hashes = {stages.job_stem(cfg, ds_name, j)[1] for j in todo}
        rows = load_store(out)
        logger.log_summary({f"roar/{f or 'none'}/{m}/r{x:g}/repeat{k}": a for (m, x, k, f), a in accs.items()})
        logger.finish(rows[rows["method_hash"].isin(hashes)])
    if write_tables:
        from ..report.roar import write_roar_tables

        for path in write_roar_tables(out) or []:
            say(f"roar: wrote {path}")
    return {"trained": len(todo), "skipped": skipped, "accuracy": accs, "seconds": time.perf_counter() - t0}


def _logger(cfg: dict[str, Any], out):
    """A W&B run for this ROAR invocation when ``logger=wandb`` (accuracies per job, then the per-image rows)."""
    lcfg = dict(cfg.get("logger") or {})
    if lcfg.get("name", "none") in (None, "none"):
        return None
    from ..report.wandb_log import WandbLogger

    for key in ("name", "best_effort", "log_maps"):
        lcfg.pop(key, None)
    r = cfg["roar"]
    tag = "all" if r.get("method") is None else f"{r['method']}/r{r.get('ratio')}"
    return WandbLogger(config=cfg, out_dir=str(out), name=f"roar/{cfg['dataset'].get('name')}/{tag}", **lcfg)


try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover
    Callback = object


class RoarCallback(Callback):
    """Hydra callback of the ROAR experiments: the ROAR tables once every job of a multirun ended."""

    def on_multirun_end(self, config, **kwargs) -> None:
        from ..run.app import sweep_out_dir

        out = sweep_out_dir(config)
        if out is not None and (out / "roar" / "store").is_dir():
            from ..report.roar import write_roar_tables

            for path in write_roar_tables(out / "roar") or []:
                log.info("wrote %s", path)


def _main(cfg) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from attribution.errors import ConfigError

    from ..run import console
    from ..run.app import _absolute_out_dir

    _absolute_out_dir(cfg)
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        run_roar(cfg, write_tables=not multirun)
    except ConfigError as e:
        if console.debug_requested():
            raise
        raise console.user_error(e) from None


def main() -> None:
    import sys

    import hydra

    from ..run import console
    from ..run.app import _importable_in_workers
    from ..run.config import CONFIG_DIR

    _importable_in_workers()
    sys.argv = console.strip_debug_flag(sys.argv)
    console.quiet_libraries()
    hydra.main(config_path=CONFIG_DIR, config_name="config", version_base=None)(_main)()
