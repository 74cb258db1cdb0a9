"""The authors' per-image loops as the speed benchmark calls them: ``LOOPS[name](model, x, target, method, sync=...,
max_images=..., max_steps=..., **extra) -> LoopRun``.

Each loop takes the *configured library method* (for its hyperparameters, baseline and normalisation), runs the
reference algorithm of its family (one image at a time, one path point per forward+backward, host-side control flow;
docs/upstream_methods.md sections 1.3, 2, 3 and 11) and times it:

- ``ig``, ``sig``, ``blur_ig``, ``guided_ig``, ``grad_input`` run for real (every image, every step) and return their
  attributions, so the benchmark can check that the loop does the same work (``agreement``);
- ``ma_gig``, ``eig``, ``mig``, ``ig2``, ``agi`` may run on the first ``max_images`` images and, for the step loops,
  the first ``max_steps`` steps; the time is then extrapolated phase by phase (fixed set-up + per-step path
  construction x steps + per-point integration x points) and the run is flagged ``extrapolated``.

``samp`` has no loop (the authors' SAMP is already batched over images) and ``random`` does no model work.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .agi import authors_agi
from .blur_ig import authors_blur_ig
from .core import Clock
from .guided_ig import authors_guided_ig
from .ig import authors_grad_input, authors_ig
from .ig2 import authors_ig2
from .latent import authors_eig, authors_ma_gig, authors_mig
from .sig import authors_sig

SyncFn = Callable[[], None]


@dataclass
class LoopRun:
    """Seconds per image of a reference loop; ``mode`` is "real" or "extrapolated"."""

    sec_per_image: float
    mode: str
    attr: torch.Tensor | None = None
    images: int = 0
    note: str = ""
    phases: dict[str, float] = field(default_factory=dict)


def _nosync():
    return None


def _subset(x: torch.Tensor, max_images: int | None) -> int:
    return x.shape[0] if max_images is None else max(1, min(int(max_images), x.shape[0]))


def _result(total_sec: float, n_img: int, n_all: int, attrs, extrapolated_steps: bool, note: str = "",
            phases=None) -> LoopRun:
    mode = "extrapolated" if (extrapolated_steps or n_img < n_all) else "real"
    attr = torch.stack(attrs) if (attrs and mode == "real") else None
    notes = [note] if note else []
    if n_img < n_all:
        notes.append(f"timed on {n_img}/{n_all} images")
    return LoopRun(total_sec / n_img, mode, attr, n_img, "; ".join(notes), dict(phases or {}))


def _steps(n: int, max_steps: int | None) -> int:
    """Guided steps actually run: N - 1, or fewer for timing."""
    return n - 1 if max_steps is None else min(n - 1, max(1, int(max_steps)))


# -- pixel-space path methods (run for real) --------------------------------------------------------------------
def loop_ig(model, x, target, method, sync: SyncFn = _nosync, max_images=None, **_) -> LoopRun:
    """IG (2.1): per image N gradients along the straight line."""
    n_img, b, ys = _subset(x, max_images), method.baseline_for(x), target.tolist()
    clock = Clock(sync)
    with clock.phase("run", n_img):
        attrs = [authors_ig(model, x[i], b[i], ys[i], method.n_steps, method.objective) for i in range(n_img)]
    return _result(clock.total(), n_img, x.shape[0], attrs, False)


def loop_sig(model, x, target, method, sync: SyncFn = _nosync, max_images=None, **_) -> LoopRun:
    """SIG (3): per image one decomposition of x - b, N reconstructions built one by one, then ``compute_ig``."""
    n_img, b, ys = _subset(x, max_images), method.baseline_for(x), target.tolist()
    mode = getattr(method, "spectral_mode", "svd")
    levels = getattr(method, "wavelet_levels" if mode == "wavelet" else "laplacian_levels", 4)
    note = ""
    if mode in ("wavelet", "laplacian") and getattr(method, "band_order", "authors") != "authors":
        note = "loop runs the authors' band order"
    kw = dict(n_steps=method.n_steps, overlap=float(getattr(method, "overlap", 0.4)), spectral_mode=mode,
              channel_mode=getattr(method, "channel_mode", "per_channel"), gating=getattr(method, "gating", "linear"),
              levels=levels, sigmoid_k=float(getattr(method, "gating_sigmoid_k", 12.0)), objective=method.objective)
    clock = Clock(sync)
    with clock.phase("run", n_img):
        attrs = [authors_sig(model, x[i], b[i], ys[i], **kw) for i in range(n_img)]
    return _result(clock.total(), n_img, x.shape[0], attrs, False, note)


def loop_blur_ig(model, x, target, method, sync: SyncFn = _nosync, max_images=None, **_) -> LoopRun:
    """Blur IG (2.2): per image N+1 points blur(x, sigma_{N-j}), one blur per point in raw pixels, ``compute_ig``."""
    n_img, ys = _subset(x, max_images), target.tolist()
    kw = dict(n_steps=method.n_steps, max_sigma=method.max_sigma, sqrt=bool(getattr(method, "sqrt", False)),
              mean=method.norm.mean, std=method.norm.std, objective=method.objective)
    clock = Clock(sync)
    with clock.phase("run", n_img):
        attrs = [authors_blur_ig(model, x[i], ys[i], **kw) for i in range(n_img)]
    return _result(clock.total(), n_img, x.shape[0], attrs, False)


def loop_guided_ig(model, x, target, method, sync: SyncFn = _nosync, max_images=None, max_steps=None,
                   **_) -> LoopRun:
    """Guided IG (2.4): per image N-1 guided steps (one F+B each, a quantile over all C*H*W features per inner pass),
    the last point x, then ``compute_ig`` recomputing all N gradients: 2N - 1 passes."""
    n_img, n, b, ys = _subset(x, max_images), method.n_steps, method.baseline_for(x), target.tolist()
    steps = _steps(n, max_steps)
    clock = Clock(sync)
    attrs = [authors_guided_ig(model, x[i], b[i], ys[i], n, method.fraction, method.objective, clock, steps)
             for i in range(n_img)]
    extra = steps < n - 1
    total = clock.extrapolate({"path": (n - 1) * n_img, "integrate": n * n_img}) if extra else clock.total()
    note = "" if getattr(method, "schedule", "authors") == "authors" else "loop runs the authors' schedule"
    return _result(total, n_img, x.shape[0], attrs if not extra else [], extra, note, clock.sec)


def loop_grad_input(model, x, target, method, sync: SyncFn = _nosync, max_images=None, **_) -> LoopRun:
    """Gradient x Input (2.3): one F+B per image (batch of 1)."""
    n_img, b, ys = _subset(x, max_images), method.baseline_for(x), target.tolist()
    clock = Clock(sync)
    with clock.phase("run", n_img):
        attrs = [authors_grad_input(model, x[i], b[i], ys[i], method.objective) for i in range(n_img)]
    return _result(clock.total(), n_img, x.shape[0], attrs, False)


# -- latent methods (may be extrapolated) -------------------------------------------------------------------------
def loop_ma_gig(model, x, target, method, sync: SyncFn = _nosync, max_images=None, max_steps=None,
                **_) -> LoopRun:
    """MA-GIG (2.5): per image 2 encodes; per step a no-grad decode of the path point (s >= 1), a decode with graph
    -> classifier -> backward to z, the latent guided inner loop; then ``compute_ig`` on the N pixel points."""
    n_img, n, b, ys = _subset(x, max_images), method.n_steps, method.baseline_for(x), target.tolist()
    steps = _steps(n, max_steps)
    vae = method.vae.on(x.device)
    clock = Clock(sync)
    for i in range(n_img):
        authors_ma_gig(model, vae, x[i], b[i], ys[i], n, method.fraction, method.use_slerp, method.anchor_endpoints,
               method.objective, clock, steps)
    extra = steps < n - 1
    total = clock.extrapolate({"path": (n - 1) * n_img, "integrate": n * n_img}) if extra else clock.total()
    return _result(total, n_img, x.shape[0], [], extra, "", clock.sec)


def loop_eig(model, x, target, method, sync: SyncFn = _nosync, max_images=None, max_steps=None, **_) -> LoopRun:
    """EIG (2.6): per image 2 encodes, N no-grad decodes of the latent line (one point each), ``compute_ig``."""
    n_img, n, b, ys = _subset(x, max_images), method.n_steps, method.baseline_for(x), target.tolist()
    pts_n = n if max_steps is None else min(n, max(2, int(max_steps)))
    vae = method.vae.on(x.device)
    clock = Clock(sync)
    for i in range(n_img):
        authors_eig(model, vae, x[i], b[i], ys[i], n, bool(getattr(method, "use_slerp", False)), method.objective,
                    clock, pts_n)
    extra = pts_n < n
    total = clock.extrapolate({"path": n * n_img, "integrate": n * n_img}) if extra else clock.total()
    return _result(total, n_img, x.shape[0], [], extra, "", clock.sec)


def loop_mig(model, x, target, method, sync: SyncFn = _nosync, max_images=None, max_steps=None,
             n_eta: float | None = None, **_) -> LoopRun:
    """Manifold IG (2.7): per image, per eta three no-grad decodes and a VJP through the decoder, Gauss-Seidel sweeps
    with an energy check before each (at most ``max_iterations``), then T decodes and ``compute_ig``. With
    ``max_steps`` only that many etas are evaluated and the eta phase is extrapolated to ``n_eta`` etas per image
    (default: the worst case (T-2) * 2 * max_iterations; the benchmark passes the count implied by the library run's
    sweeps)."""
    n_img, t_pts, b, ys = _subset(x, max_images), method.n_steps, method.baseline_for(x), target.tolist()
    budget = None if max_steps is None else max(1, int(max_steps))
    vae = method.vae.on(x.device)
    clock = Clock(sync)
    counted = []
    for i in range(n_img):
        before = clock.done.get("eta", 0)
        authors_mig(model, vae, x[i], b[i], ys[i], t_pts, method.alpha, method.max_iterations, method.epsilon,
            method.objective, clock, budget)
        counted.append(clock.done["eta"] - before)
    if budget is not None:
        worst = (t_pts - 2) * 2 * max(1, method.max_iterations)
        per_img = float(n_eta) if n_eta is not None else float(worst)
        total = clock.extrapolate({"eta": per_img * n_img})
        note = f"eta phase extrapolated to {per_img:.0f} etas/image" + ("" if n_eta is not None else " (worst case)")
    else:
        total, note = clock.total(), f"{sum(counted) / n_img:.0f} etas/image"
    return _result(total, n_img, x.shape[0], [], budget is not None, note, clock.sec)


# -- AGI and IG2 (upstream .backward() with parameters requiring grad) --------------------------------------------
def loop_agi(model, x, target, method, sync: SyncFn = _nosync, max_images=None, num_classes: int | None = None,
             **_) -> LoopRun:
    """AGI (2.8): per image, per target class, per iteration: forward, argmax test (host sync), two ``.backward()``
    through one graph, a signed step clamped to the pixel box. Timed for real on ``max_images`` images (the
    iteration count is data dependent)."""
    n_img, ys = _subset(x, max_images), target.tolist()
    with torch.no_grad():
        n_cls = num_classes or method.num_classes or model(x[:1]).shape[1]
    clock = Clock(sync)
    with clock.phase("run", n_img):
        for i in range(n_img):
            authors_agi(model, x[i], ys[i], method.num_neg_cls, method.step_size, method.max_iter, method.norm.mean,
                method.norm.std, n_cls)
    return _result(clock.total(), n_img, x.shape[0], [], False)


def loop_ig2(model, x, target, method, sync: SyncFn = _nosync, max_images=None, max_steps=None, **_) -> LoopRun:
    """IG2 (2.9): per image, the representation of n_refs references (one forward), ``steps`` path steps (F+B on
    the n_refs copies each), then ``steps`` F+B for the integration (a second pass over the same points, as
    upstream). References: the next images of the batch."""
    from attribution.methods.ig2 import find_representation_layer

    n_img, steps, ys = _subset(x, max_images), method.steps, target.tolist()
    run_steps = steps if max_steps is None else min(steps, max(1, int(max_steps)))
    r = method.n_references
    _, layer = find_representation_layer(model, method.rep_layer)
    clock = Clock(sync)
    for i in range(n_img):
        refs = torch.stack([x[(i + 1 + k) % x.shape[0]] for k in range(r)])
        authors_ig2(model, layer, x[i], ys[i], refs, steps, method.step_size, clock, run_steps)
    extra = run_steps < steps
    total = clock.extrapolate({"path": steps * n_img, "integrate": steps * n_img}) if extra else clock.total()
    return _result(total, n_img, x.shape[0], [], extra, "", clock.sec)


LOOPS: dict[str, Callable[..., LoopRun]] = {
    "ig": loop_ig,
    "sig": loop_sig,
    "blur_ig": loop_blur_ig,
    "guided_ig": loop_guided_ig,
    "grad_input": loop_grad_input,
    "ma_gig": loop_ma_gig,
    "eig": loop_eig,
    "mig": loop_mig,
    "agi": loop_agi,
    "ig2": loop_ig2,
}
REAL_LOOPS = ("ig", "sig", "blur_ig", "guided_ig", "grad_input")
NO_LOOP = {"samp": "the authors' SAMP is already batched over images (no per-image loop to compare)",
           "random": "no model work"}
