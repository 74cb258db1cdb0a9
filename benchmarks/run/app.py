"""The benchmark runner: ``python -m benchmarks.run dataset=... model=... method=... metrics=...``.

A thin Hydra app over the library (docs/design.md "Data flows one way"):
config -> dataset (manifest of ids) -> batches -> classifier -> targets -> method -> attributions (cached)
-> metrics (per image) -> results store (one file per shard) -> tables/report.

- :func:`run` plans (:mod:`.planning`: every name and value checked before any work), builds, and evaluates one
  (dataset, model, method, shard) job batch by batch (:mod:`.batch`: resumable, atomic writes).
- ``shard=i/n`` evaluates the i-th of n contiguous slices of the dataset's ids.
- ``experiment=demo`` / ``experiment=table1`` select the two reference grids (``-m`` runs the grid); under ``-m``
  :class:`SweepCallback` checks the whole grid first (``preflight``) and writes the tables once every job ended.

Examples::

    python -m benchmarks.run dataset=mnist model=mnist_cnn method=guided_ig metrics=default
    python -m benchmarks.run -m experiment=table1 hydra/launcher=slurm shard=0/4,1/4,2/4,3/4
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attribution.errors import ConfigError

from ..io.store import load_store
from ..report.stats import accuracy
from . import console
from .batch import RunResult, evaluate
from .config import CONFIG_DIR
from .planning import PreflightError, Setup, build, plan, preflight

log = logging.getLogger("benchmarks.run")


def finalize(out_dir, logger_cfg: dict[str, Any] | None = None) -> list[str]:
    """Write the tables and the report of ``out_dir``; with ``logger_cfg`` of W&B (``logger=wandb``), log the same
    tables and charts as one W&B run of job type report. Returns what was written."""
    import warnings

    from ..report.grids import write_attribution_grids
    from ..report.page import write_report
    from ..report.table import build_tables, load_results, write_bundle

    written = []
    grids = write_attribution_grids(out_dir)  # before the report, which embeds every PNG in figures/
    if grids:
        written.append(f"benchmarks.report.grids.write_attribution_grids: {[str(g) for g in grids]}")
    df = load_results(out_dir)
    tables = build_tables(df)  # once, for the table files and the report
    for note in tables.notes:
        warnings.warn(note, stacklevel=2)
    written.append(f"benchmarks.report.table.write_tables: {write_bundle(tables, out_dir)}")
    written.append(f"benchmarks.report.page.write_report: {write_report(out_dir, df=df, tables=tables)}")
    if (logger_cfg or {}).get("name") == "wandb":
        written.append(_report_to_wandb(out_dir, logger_cfg))
    return written


def _report_to_wandb(out_dir, logger_cfg: dict[str, Any]) -> str:
    """The report's tables and charts as one W&B run (:func:`benchmarks.report.wandb_log.report_to_wandb`), with
    the logger's mode, project, entity, group and tags; fails (results kept) unless ``best_effort``."""
    from ..report.wandb_log import report_to_wandb, sync_hint

    opts = {k: logger_cfg[k] for k in ("mode", "project", "entity", "group", "tags") if logger_cfg.get(k) is not None}
    lg = report_to_wandb(out_dir, **opts)
    if lg.failures and not logger_cfg.get("best_effort"):
        raise LoggerError(f"W&B did not get the report of {Path(out_dir).name} ({len(lg.failures)} failed call(s); "
                          f"first: {lg.failures[0]['error']}); the tables are written. Re-log it with "
                          f"`python -m benchmarks.report {Path(out_dir).name} --wandb`, or set logger.best_effort=true")
    return "W&B report run" + (f": {sync_hint(lg.saved_to)}" if lg.saved_to is not None else "")


class LoggerError(RuntimeError):
    """The experiment tracker the run asked for did not get everything; the results are kept in the store."""


#: the runner's own keys of a logger config (not passed to the tracker)
_LOGGER_RUN_KEYS = ("name", "best_effort", "log_maps")


def make_logger(cfg: dict[str, Any], setup: Setup):
    lcfg = dict(cfg.get("logger") or {})
    kind = lcfg.get("name", "none")
    for key in _LOGGER_RUN_KEYS:
        lcfg.pop(key, None)
    if kind in (None, "none"):
        return None
    if kind == "wandb":
        from ..report.wandb_log import WandbLogger

        return WandbLogger(config=cfg, out_dir=str(setup.out_dir),
                           name=f"{setup.dataset.name}/{setup.classifier.name}/{setup.method_name}", **lcfg)
    raise ValueError(f"invalid logger={kind!r}: choose none or wandb")


def _log_maps(cfg: dict[str, Any], setup: Setup, logger, stem: str) -> None:
    """The first ``logger.log_maps`` attribution maps of the job, as images."""
    from .batch import attribution_maps

    n = int((cfg.get("logger") or {}).get("log_maps") or 0)
    if n <= 0 or not hasattr(logger, "log_images"):
        return
    df = load_store(setup.out_dir, prefix=stem + "__")
    ids = [str(i) for i in df.loc[df["status"] == "ok", "image_id"]] if len(df) else []
    maps = attribution_maps(setup, ids, n)
    if maps:
        logger.log_images("attributions", [m for _, m in maps], captions=[i for i, _ in maps])


def _close_logger(cfg: dict[str, Any], setup: Setup, logger) -> None:
    """Say where an offline W&B run went; fail (results kept) when W&B did not get everything, unless the run
    chose ``logger.best_effort=true``."""
    from ..report.wandb_log import sync_hint

    saved = getattr(logger, "saved_to", None)
    if saved is not None:
        log.info("%s", sync_hint(saved))
    failures = list(getattr(logger, "failures", None) or [])
    if not failures or (cfg.get("logger") or {}).get("best_effort"):
        return
    ops = sorted({f["op"] for f in failures})
    raise LoggerError(
        f"W&B did not get this run ({len(failures)} failed call(s): {', '.join(ops)}; first: {failures[0]['error']})."
        f" The results are kept in {setup.out_dir / 'store'} (what W&B missed: "
        f"{setup.out_dir / 'wandb_not_logged.jsonl'}). Fix W&B (`wandb login`, or WANDB_MODE=offline) and re-run"
        f" to log them, or set logger.best_effort=true to let such runs exit 0")


def run(cfg, overrides: Sequence[str] = (), finalize_outputs: bool = True, preflight_single: bool = True
        ) -> RunResult:
    """Run one (dataset, model, method, shard) job from a resolved config (a dict or an OmegaConf config)."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    cfg = {k: v for k, v in cfg.items() if k != "hydra"}
    console.quiet_libraries()  # also for callers that skip main() (benchmarks.demo, launcher workers)
    console.hub_offline_if_unreachable()  # one probe per process
    try:
        setup = plan(cfg, overrides)
    except ValueError as e:  # plan's checks name the key and the fix: a configuration mistake, whatever its class
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(str(e)) from e
    if cfg.get("preflight") and preflight_single:
        preflight([cfg])
    build(setup)
    logger = make_logger(cfg, setup)
    try:
        result = evaluate(setup, logger)
        if logger is not None:
            _log_maps(cfg, setup, logger, result.stem)
            logger.finish(load_store(setup.out_dir, prefix=result.stem + "__"))
    except BaseException:
        if logger is not None and hasattr(logger, "abort"):
            logger.abort()
        raise
    if logger is not None:
        _close_logger(cfg, setup, logger)
    rate = result.evaluated / result.seconds if result.seconds > 0 else math.nan
    acc, n_acc = accuracy(load_store(setup.out_dir, prefix=result.stem + "__"))
    log.info("%s: %d evaluated (%.2f img/s), %d already done, %d re-scored; classifier top-1 accuracy %.3f on "
             "%d images", result.stem, result.evaluated, rate, result.skipped_done, result.rescored, acc, n_acc)
    if finalize_outputs and cfg.get("write_tables", True):
        for line in finalize(setup.out_dir, cfg.get("logger")):
            log.info("wrote %s", line)
    return result


def _absolute_out_dir(cfg) -> None:
    """Resolve a relative ``out_dir`` against the directory the command was started in (jobs may run elsewhere)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    out = Path(str(cfg.out_dir)).expanduser()
    if not out.is_absolute():
        try:
            base = Path(HydraConfig.get().runtime.cwd)
        except ValueError:
            base = Path.cwd()
        with open_dict(cfg):
            cfg.out_dir = str(base / out)


def sweep_configs(config) -> list[dict[str, Any]]:
    """The resolved job configs of a multirun, one per (dataset, model, method) of the sweep (shards collapsed)."""
    import itertools

    from hydra import compose
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    parser = OverridesParser.create()
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    given = [f"{k}={v}" for k, v in params.items()] + list(OmegaConf.select(config, "hydra.overrides.task") or [])
    # the config search path given on the command line (hydra.searchpath=[...]) shapes the composition too
    search = [o for o in OmegaConf.select(config, "hydra.overrides.hydra") or [] if o.startswith("hydra.searchpath")]
    fixed, axes = [], {}
    for o in parser.parse_overrides(given):
        key = o.key_or_group
        if o.is_sweep_override():
            axes[key] = [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
        else:
            axes.pop(key, None)
            fixed = [f for f in fixed if parser.parse_override(f).key_or_group != key] + [o.input_line]
    axes = {k: v for k, v in axes.items() if k in ("dataset", "model", "method", "vae")}
    out = []
    for combo in itertools.product(*axes.values()):
        cfg = compose(config_name="config", overrides=[*search, *fixed, *combo])
        out.append(OmegaConf.to_container(cfg, resolve=True))
    return out


try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover
    Callback = object


def sweep_out_dir(config) -> Path | None:
    """A multirun's ``out_dir``, resolved against the folder the command was started in (None where unset)."""
    from omegaconf import OmegaConf

    out = OmegaConf.select(config, "out_dir")
    if out is None:
        return None
    out = Path(str(out)).expanduser()
    if not out.is_absolute():
        out = Path(OmegaConf.select(config, "hydra.runtime.cwd") or os.getcwd()) / out
    return out


class SweepCallback(Callback):
    """Hydra callback (configs/config.yaml): ``preflight`` before a multirun starts its jobs, and the tables and
    report of ``out_dir`` once they all ended."""

    def on_multirun_start(self, config, **kwargs) -> None:
        if config.get("preflight", False):
            try:
                cfgs = sweep_configs(config)
                log.info("preflight: checking the device, data, classifiers and VAE of %d jobs", len(cfgs))
                preflight(cfgs)
            except Exception as e:  # noqa: BLE001
                # Hydra turns a callback's exception into a warning and goes on: stop the sweep here instead
                raise SystemExit(f"{e}\nNothing was run.") from None

    def on_multirun_end(self, config, **kwargs) -> None:
        if not config.get("write_tables", True):
            return
        from omegaconf import OmegaConf

        out = sweep_out_dir(config)
        if out is not None and (out / "store").is_dir():
            logger_cfg = OmegaConf.to_container(config.logger, resolve=True) if config.get("logger") else None
            for line in finalize(out, logger_cfg):
                log.info("wrote %s", line)


def _main(cfg) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    _absolute_out_dir(cfg)
    multirun = hc.mode == RunMode.MULTIRUN
    # under -m the callback already checked the whole grid and writes the tables once every job ended
    try:
        run(cfg, overrides=list(hc.overrides.task), finalize_outputs=not multirun, preflight_single=not multirun)
    except (ConfigError, PreflightError, LoggerError) as e:
        if console.debug_requested():
            raise
        raise console.user_error(e) from None
    except KeyboardInterrupt:  # the loop said what is saved and how to resume: no traceback (exit 130 as a shell's)
        if console.debug_requested():
            raise
        raise SystemExit(130) from None


def _importable_in_workers() -> None:
    """Put the clone's root on ``PYTHONPATH``: the harness is not an installed package, and the processes a
    launcher starts (joblib workers, submitit's local or SLURM jobs) import ``benchmarks`` to run a job."""
    root = str(Path(__file__).resolve().parents[2])
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])
    from ..sweep import plugin_path

    plugin_path()  # the supervised SLURM launcher (hydra/launcher=slurm, slurm_cpu), for Hydra and for the jobs


def main() -> None:
    import sys

    import hydra

    _importable_in_workers()
    sys.argv = console.strip_debug_flag(sys.argv)
    console.quiet_libraries()
    console.hub_offline_if_unreachable()

    hydra.main(config_path=CONFIG_DIR, config_name="config", version_base=None)(_main)()


if __name__ == "__main__":
    main()
