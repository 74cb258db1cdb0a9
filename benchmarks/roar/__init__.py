"""ROAR with retraining (Hooker et al., NeurIPS 2019): :mod:`.plan` (the ``roar`` block checked, the job list),
:mod:`.stages` (base model, attribution maps, one retraining per (map, ratio)), :mod:`.app` (the Hydra entry
``python -m benchmarks.roar``). The protocol's pieces are in the library, :mod:`attribution.roar`."""
from .app import RoarCallback, main, run_roar
from .plan import Job, all_maps, check, jobs

__all__ = ["RoarCallback", "main", "run_roar", "Job", "all_maps", "check", "jobs"]
