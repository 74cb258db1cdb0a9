"""Compatibility shims for third-party metric code on the current NumPy (no forks of the libraries).

NumPy 2.4 removed ``np.trapz`` (deprecated in 2.0 in favour of ``np.trapezoid``, same signature). Quantus 0.6
(``quantus.helpers.utils.calculate_auc``) and PAIR saliency 0.2 (``saliency.metrics.pic``) still call it.
:func:`numpy_trapz` puts ``np.trapz = np.trapezoid`` on the numpy module for the duration of a ``with`` block,
only when NumPy lacks it, and removes it again when the last (possibly nested or concurrent) block exits.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

_lock = threading.Lock()
_depth = 0
_installed = False


@contextlib.contextmanager
def numpy_trapz():
    """``with numpy_trapz(): quantus_metric(...)`` - makes ``np.trapz`` available inside the block."""
    global _depth, _installed
    with _lock:
        if _depth == 0 and "trapz" not in np.__dict__ and not hasattr(np, "trapz"):
            np.trapz = np.trapezoid
            _installed = True
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _installed:
                del np.trapz
                _installed = False


__all__ = ["numpy_trapz"]
