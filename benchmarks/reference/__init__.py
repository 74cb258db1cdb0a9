"""The one copy of the MA-GIG / SIG authors' algorithms (their ``cleanig`` code, audited in docs/upstream_methods.md),
written the way they run them: one image at a time, one path point per forward+backward, host-side control flow,
every wasted or repeated pass kept. Outside the library on purpose: it is the oracle the batched methods of
:mod:`attribution.methods` are tested against (``tests/methods``) and the baseline the speed benchmark times
(:data:`LOOPS`, :mod:`benchmarks.perf`).

One module per family, each a pure function per algorithm (``authors_<method>``) taking the model, one image [C,H,W],
its target and the authors' settings, with one comment per step saying what their code does there:

- :mod:`.core`: the score, ``grad_at`` (batch 1), ``compute_ig`` (1.3), normalisation, lerp/slerp, the authors'
  ``.backward()`` habit, the optional :class:`Clock` (timing hooks ``clock=`` / ``max_steps=`` of the step loops);
- :mod:`.ig` (IG, Gradient x Input), :mod:`.blur_ig`, :mod:`.guided_ig`, :mod:`.sig`, :mod:`.latent` (MA-GIG, EIG,
  Manifold IG), :mod:`.agi`, :mod:`.ig2`, :mod:`.samp`; :mod:`.idgi` (IDGI's authors' combination of a path's
  gradients); :mod:`.diffid` (the metric's protocol);
- :mod:`.loops`: :data:`LOOPS`, name -> ``loop(model, x, target, method, sync=, max_images=, max_steps=, **extra)
  -> LoopRun``, the adapters the speed benchmark calls (settings read off a configured library method);
- :mod:`.costs`: :data:`UPSTREAM_COSTS`, the authors' rows per image at N steps.
"""
from .agi import AGIRun, agi_targets, authors_agi
from .blur_ig import authors_blur, authors_blur_ig, blur_path, blur_sigmas
from .core import (
                   NO_CLOCK,
                   Clock,
                   black,
                   compute_ig,
                   grad_at,
                   lerp,
                   parameters_require_grad,
                   preprocess,
                   score,
                   slerp,
                   undo_preprocess,
)
from .costs import UPSTREAM_COSTS
from .diffid import RATIOS, diffid_curves
from .guided_ig import authors_guided_ig, guided_ig_path, guided_inner
from .idgi import authors_idgi, idgi_on_path
from .ig import authors_grad_input, authors_ig, ig_path
from .ig2 import IG2Run, authors_ig2, representation
from .latent import authors_eig, authors_ma_gig, authors_mig, eig_path, ma_gig_path, mig_path
from .loops import (
                   LOOPS,
                   NO_LOOP,
                   REAL_LOOPS,
                   LoopRun,
                   loop_agi,
                   loop_blur_ig,
                   loop_eig,
                   loop_grad_input,
                   loop_guided_ig,
                   loop_ig,
                   loop_ig2,
                   loop_ma_gig,
                   loop_mig,
                   loop_sig,
)
from .samp import SAMPRun, authors_samp, gkern, insertion_start, samp_line
from .sig import authors_sig, component_scale, spectral_path, spectral_path_svd, spectral_state

__all__ = [
    # the speed benchmark's interface (formerly benchmarks/reference_loops.py)
    "LOOPS", "REAL_LOOPS", "NO_LOOP", "LoopRun", "loop_ig", "loop_sig", "loop_blur_ig", "loop_guided_ig",
    "loop_grad_input", "loop_ma_gig", "loop_eig", "loop_mig", "loop_agi", "loop_ig2",
    "UPSTREAM_COSTS",
    # shared pieces
    "Clock", "NO_CLOCK", "score", "grad_at", "compute_ig", "preprocess", "undo_preprocess", "black", "lerp", "slerp",
    "parameters_require_grad",
    # the algorithms, one image [C,H,W] at a time
    "authors_ig", "ig_path", "authors_grad_input", "authors_idgi", "idgi_on_path",
    "authors_blur_ig", "blur_path", "blur_sigmas", "authors_blur",
    "authors_guided_ig", "guided_ig_path", "guided_inner",
    "authors_sig", "spectral_path", "spectral_path_svd", "spectral_state", "component_scale",
    "authors_ma_gig", "ma_gig_path", "authors_eig", "eig_path", "authors_mig", "mig_path",
    "authors_agi", "agi_targets", "AGIRun",
    "authors_ig2", "representation", "IG2Run",
    "authors_samp", "samp_line", "insertion_start", "gkern", "SAMPRun",
    "diffid_curves", "RATIOS",
]
