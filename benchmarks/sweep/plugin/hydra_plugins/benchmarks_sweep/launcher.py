"""The ``slurm`` / ``slurm_cpu`` presets' launcher: hydra-submitit-launcher's, supervised
(:mod:`benchmarks.sweep.supervise`)."""
from __future__ import annotations

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher


class SupervisedSlurmLauncher(SlurmLauncher):
    """Checks the request against the partition, submits one array, follows every task, writes the tables of what
    finished when some failed and exits non-zero listing them, cancels the array when stopped."""

    def launch(self, job_overrides, initial_job_idx):
        from benchmarks.sweep.supervise import launch

        return launch(self, job_overrides, initial_job_idx)
