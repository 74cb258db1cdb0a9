"""Sweeps on SLURM: the supervised launcher (:mod:`.supervise`), the request check (:mod:`.resources`), the SLURM
commands (:mod:`.slurm`) and ``python -m benchmarks.sweep <sweep dir | out_dir>`` (:mod:`.progress`)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

PLUGIN_DIR = str(Path(__file__).resolve().parent / "plugin")


def plugin_path() -> None:
    """Put the folder of the ``hydra_plugins.benchmarks_sweep`` launcher on ``sys.path`` and ``PYTHONPATH`` (the
    jobs unpickle the launcher), before Hydra scans its plugins."""
    if PLUGIN_DIR not in sys.path:
        sys.path.append(PLUGIN_DIR)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if PLUGIN_DIR not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([*paths, PLUGIN_DIR])
