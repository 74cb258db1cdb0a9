"""The runner: ``python -m benchmarks.run [key=value ...]`` (Hydra app, :mod:`.app`).

:mod:`.config` (config helpers), :mod:`.planning` (validate, then load), :mod:`.batch` (the per-batch loop),
:mod:`.app` (one job, the Hydra entry point and the sweep callback). The names below are the runner's face.
"""
from . import app, batch, config, planning
from .app import LoggerError, SweepCallback, finalize, main, make_logger, run, sweep_configs
from .batch import Batch, RunContext, RunResult, evaluate, run_batch
from .config import (
                     CONFIG_DIR,
                     TARGETS,
                     _cli_method_keys,
                     compose_config,
                     method_config,
                     metrics_config,
                     parse_shard,
                     resolve_embedded,
                     seed_everything,
                     select_device,
                     shard_slice,
                     sweep_params,
)
from .planning import PreflightError, Setup, build, plan, preflight, reference_bank

__all__ = ["app", "batch", "config", "planning", "LoggerError", "SweepCallback", "finalize", "main", "make_logger",
           "run", "sweep_configs", "Batch", "RunContext", "RunResult", "evaluate", "run_batch", "CONFIG_DIR", "TARGETS",
           "_cli_method_keys", "compose_config", "method_config", "metrics_config", "parse_shard", "resolve_embedded",
           "seed_everything", "select_device", "shard_slice", "sweep_params", "PreflightError", "Setup", "build",
           "plan", "preflight", "reference_bank"]
