"""Moved to :mod:`benchmarks.reference` (the one copy of the authors' per-image loops); this name stays until the
speed benchmark imports the package."""
from .reference import *  # noqa: F401,F403
from .reference import (LOOPS, NO_LOOP, REAL_LOOPS, LoopRun, authors_blur, compute_ig, grad_at,  # noqa: F401
                        loop_agi, loop_blur_ig, loop_eig, loop_grad_input, loop_guided_ig, loop_ig, loop_ig2,
                        loop_ma_gig, loop_mig, loop_sig, spectral_path_svd)
