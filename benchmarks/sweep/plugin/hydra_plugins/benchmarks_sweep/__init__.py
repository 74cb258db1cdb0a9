"""Hydra finds launchers only in the ``hydra_plugins`` package: this folder is put on the path by
:func:`benchmarks.sweep.plugin_path` (the runner's ``main``); the work is in :mod:`benchmarks.sweep.supervise`."""
