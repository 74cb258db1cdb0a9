"""Plain per-image, per-step reference loops, written the way the MA-GIG / SIG authors' ``cleanig`` code runs
(docs/upstream_methods.md sections 1.3, 2 and 3): one image at a time, one path point per forward+backward
(batch of 1), host-side control flow, the gradient at the last path point computed and thrown away, Guided IG and
MA-GIG recomputing every path gradient in ``compute_ig`` (2N - 1 classifier passes), MA-GIG decoding each point
twice, AGI and IG2 calling ``.backward()`` with parameters that require grad.

They exist only to time "the same work done the authors' way" for :mod:`benchmarks.speed`; they are not part of the
library. Every loop takes the *configured library method* (for its hyperparameters, baseline and normalisation) and
returns a :class:`LoopRun`:

- ``ig``, ``sig``, ``blur_ig``, ``guided_ig``, ``grad_input`` run for real (every image, every step) and return their
  attributions, so the benchmark can check that the loop does the same work (``agreement``);
- ``ma_gig``, ``eig``, ``mig``, ``ig2``, ``agi`` may run on the first ``max_images`` images and, for the step loops,
  the first ``max_steps`` steps; the time is then extrapolated phase by phase (fixed set-up + per-step path
  construction x steps + per-point integration x points) and the run is flagged ``extrapolated``.

``samp`` has no loop (the authors' SAMP is already batched over images) and ``random`` does no model work.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F

SyncFn = Callable[[], None]


@dataclass
class LoopRun:
    """Seconds per image of a reference loop; ``mode`` is "real" or "extrapolated"."""

    sec_per_image: float
    mode: str
    attr: Optional[torch.Tensor] = None
    images: int = 0
    note: str = ""
    phases: Dict[str, float] = field(default_factory=dict)


class _Phases:
    """Wall time per named phase (synchronised on the device) and how many units each phase covered."""

    def __init__(self, sync: SyncFn):
        self.sync = sync
        self.sec: Dict[str, float] = {}
        self.done: Dict[str, int] = {}

    def run(self, name: str, fn, units: int = 1):
        self.sync()
        t = time.perf_counter()
        out = fn()
        self.sync()
        self.sec[name] = self.sec.get(name, 0.0) + time.perf_counter() - t
        self.done[name] = self.done.get(name, 0) + units
        return out

    def extrapolate(self, totals: Dict[str, float]) -> float:
        """sum over phases of measured seconds x (total units / measured units); phases absent from ``totals``
        are counted as measured (fixed set-up cost)."""
        out = 0.0
        for name, sec in self.sec.items():
            done = max(1, self.done.get(name, 1))
            out += sec * (totals[name] / done if name in totals else 1.0)
        return out


def _nosync():
    return None


def _score(logits: torch.Tensor, target: torch.Tensor, objective: str) -> torch.Tensor:
    if objective == "logit":
        return logits.gather(1, target.view(-1, 1)).squeeze(1)
    return torch.softmax(logits, dim=-1).gather(1, target.view(-1, 1)).squeeze(1)


def grad_at(model, point: torch.Tensor, target: torch.Tensor, objective: str = "prob") -> torch.Tensor:
    """One classifier forward+backward on a batch of one point [1,C,H,W] (upstream ``get_grads``, one step)."""
    xr = point.detach().clone().requires_grad_(True)
    score = _score(model(xr), target.view(1), objective)
    (g,) = torch.autograd.grad(score.sum(), xr)
    return g.detach()


def compute_ig(model, path: torch.Tensor, target: torch.Tensor, objective: str = "prob",
               n_points: Optional[int] = None) -> torch.Tensor:
    """Upstream ``compute_ig`` for one image: a gradient at *every* point of ``path`` [P,C,H,W] (the last one is
    never used), one point per forward+backward, then the left Riemann sum. ``n_points`` < P computes only the
    first points (for timing; the sum then covers those segments only)."""
    p = path.shape[0] if n_points is None else min(n_points, path.shape[0])
    grads = torch.cat([grad_at(model, path[k:k + 1], target, objective) for k in range(p)])
    q = min(p, path.shape[0] - 1)
    return (grads[:q] * (path[1:q + 1] - path[:q])).sum(0)


def _subset(x: torch.Tensor, max_images: Optional[int]) -> int:
    return x.shape[0] if max_images is None else max(1, min(int(max_images), x.shape[0]))


def _result(total_sec: float, n_img: int, n_all: int, attrs, extrapolated_steps: bool, note: str = "",
            phases=None) -> LoopRun:
    mode = "extrapolated" if (extrapolated_steps or n_img < n_all) else "real"
    attr = torch.stack(attrs) if (attrs and mode == "real") else None
    notes = [note] if note else []
    if n_img < n_all:
        notes.append(f"timed on {n_img}/{n_all} images")
    return LoopRun(total_sec / n_img, mode, attr, n_img, "; ".join(notes), dict(phases or {}))


# -- pixel-space path methods (run for real) --------------------------------------------------------------------
def loop_ig(model, x, target, method, sync: SyncFn = _nosync, max_images=None, max_steps=None, **_) -> LoopRun:
    """IG: per image, path b + alpha_k (x - b) with alpha = linspace(0, 1, N), N gradients (upstream 2.1)."""
    n_img, n = _subset(x, max_images), method.n_steps
    b = method.baseline_for(x)
    sync()
    t0 = time.perf_counter()
    attrs = []
    for i in range(n_img):
        alphas = torch.linspace(0, 1, n, device=x.device).view(-1, 1, 1, 1)
        path = b[i] + alphas * (x[i] - b[i])
        attrs.append(compute_ig(model, path, target[i], method.objective))
    sync()
    return _result(time.perf_counter() - t0, n_img, x.shape[0], attrs, False)


def spectral_path_svd(diff: torch.Tensor, base: torch.Tensor, n: int, overlap: float) -> torch.Tensor:
    """The authors' SVD (per-channel, linear gate) spectral path of one image, point by point -> [N,C,H,W]."""
    u, s, vh = torch.linalg.svd(diff, full_matrices=False)  # batched over the channels
    strength = (s / s[:, :1].clamp_min(1e-10)).clamp(0.0, 1.0)
    start = (1.0 - overlap) * (1.0 - strength)
    pts = []
    for k in range(n):
        a = k / (n - 1) if n > 1 else 1.0
        if overlap <= 1e-8:
            gate = (a >= start).to(s.dtype)
        else:
            gate = ((a - start) / overlap).clamp(0.0, 1.0)
        pts.append(base + (u * (s * gate).unsqueeze(1)) @ vh)
    return torch.stack(pts)


def loop_sig(model, x, target, method, sync: SyncFn = _nosync, max_images=None, **_) -> LoopRun:
    """SIG: per image one SVD of x - b, N reconstructions built one by one, then ``compute_ig`` (upstream 3).
    Implements the benchmarked configuration (svd, per_channel, linear gating); other modes cost about the same
    and are timed with it (noted)."""
    n_img, n = _subset(x, max_images), method.n_steps
    b = method.baseline_for(x)
    note = ""
    if (getattr(method, "spectral_mode", "svd"), getattr(method, "channel_mode", "per_channel"),
            getattr(method, "gating", "linear")) != ("svd", "per_channel", "linear"):
        note = "loop runs the svd/per_channel/linear path"
    sync()
    t0 = time.perf_counter()
    attrs = []
    for i in range(n_img):
        path = spectral_path_svd(x[i] - b[i], b[i], n, float(getattr(method, "overlap", 0.4)))
        attrs.append(compute_ig(model, path, target[i], method.objective))
    sync()
    return _result(time.perf_counter() - t0, n_img, x.shape[0], attrs, False, note)


def authors_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """torchvision ``gaussian_blur`` with k = int(6 sigma + 1) bumped to odd (min 3), a full 2-D kernel and reflect
    padding, as the authors call it; where reflect is impossible (kernel half-width >= image size, where
    torchvision raises) the same 2-D convolution with replicate padding."""
    if sigma <= 0:
        return img.clone()
    k = max(3, int(6 * sigma + 1))
    k += (k % 2 == 0)
    pad = k // 2
    if pad < img.shape[-1] and pad < img.shape[-2]:
        from torchvision.transforms.functional import gaussian_blur

        return gaussian_blur(img, [k, k], [sigma, sigma])
    t = torch.linspace(-(k - 1) / 2, (k - 1) / 2, k, device=img.device, dtype=img.dtype)
    k1 = torch.exp(-0.5 * (t / sigma) ** 2)
    k1 = k1 / k1.sum()
    k2 = (k1[:, None] * k1[None, :]).expand(img.shape[-3], 1, k, k)
    y = F.pad(img.unsqueeze(0), (pad, pad, pad, pad), mode="replicate")
    return F.conv2d(y, k2, groups=img.shape[-3])[0]


def loop_blur_ig(model, x, target, method, sync: SyncFn = _nosync, max_images=None, **_) -> LoopRun:
    """Blur IG: per image N+1 points blur(x, sigma_{N-j}), one blur per point in raw pixels, then ``compute_ig``
    (upstream 2.2)."""
    n_img, n = _subset(x, max_images), method.n_steps
    sig = method.sigmas()
    sync()
    t0 = time.perf_counter()
    attrs = []
    for i in range(n_img):
        pix = method.norm.denormalize(x[i:i + 1])[0]
        pts = []
        for j in range(n + 1):
            s = sig[n - j]
            pts.append(x[i].clone() if s <= 0 else method.norm.normalize(authors_blur(pix, s).unsqueeze(0))[0])
        attrs.append(compute_ig(model, torch.stack(pts), target[i], method.objective))
    sync()
    return _result(time.perf_counter() - t0, n_img, x.shape[0], attrs, False)


def _guided_inner(cur, end, g, l1_target, fraction, partial):
    """The authors' inner loop (upstream 2.4) on one flat vector, in place on ``cur``; host syncs at each test."""
    gamma = math.inf
    while gamma > 1:
        diff = (cur - end).abs()
        l1_cur = diff.sum()
        if torch.isclose(l1_target, l1_cur, rtol=1e-9, atol=1e-9):
            break
        g[diff < 1e-9] = math.inf
        thr = torch.quantile(g.abs(), fraction, interpolation="lower")
        sel = (g.abs() <= thr) & (g != math.inf)
        l1_s = diff[sel].sum()
        if float(l1_s) <= 0:
            break  # (upstream would loop forever; never reached on real data)
        gamma = float((l1_cur - l1_target) / l1_s)
        if gamma > 1:
            cur[sel] = end[sel]
        else:
            cur[sel] = partial(max(gamma, 0.0), cur[sel], end[sel])
    return cur


def _lerp(t, a, b):
    return a + t * (b - a)


def _slerp(t, low, high):
    """The MA-GIG authors' slerp of two flat vectors (lerp fallback for tiny norms or |cos| > 0.9995)."""
    n0, n1 = low.norm(), high.norm()
    if n0 < 1e-9 or n1 < 1e-9:
        return _lerp(t, low, high)
    dot = ((low / n0) * (high / n1)).sum().clamp(-1.0, 1.0)
    if dot.abs() > 0.9995:
        return _lerp(t, low, high)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return torch.sin((1.0 - t) * omega) / so * low + torch.sin(t * omega) / so * high


def loop_guided_ig(model, x, target, method, sync: SyncFn = _nosync, max_images=None, max_steps=None,
                   **_) -> LoopRun:
    """Guided IG: per image N-1 guided steps (one F+B each, quantile over all C*H*W features per inner pass), the
    last point x, then ``compute_ig`` recomputing all N gradients: 2N - 1 passes (upstream 2.4)."""
    n_img, n = _subset(x, max_images), method.n_steps
    steps = n - 1 if max_steps is None else min(n - 1, max(1, int(max_steps)))
    b = method.baseline_for(x)
    ph = _Phases(sync)
    attrs = []
    for i in range(n_img):
        end = x[i].flatten()
        cur = b[i].flatten().clone()
        l1_total = (end - cur).abs().sum()
        path = []

        def step(s, cur=cur, end=end, l1_total=l1_total, path=path, i=i):
            path.append(cur.clone())
            g = grad_at(model, cur.view(1, *x.shape[1:]), target[i], method.objective).flatten()
            return _guided_inner(cur, end, g, l1_total * (1 - (s + 1) / n), method.fraction, _lerp)

        for s in range(steps):
            cur = ph.run("path", lambda s=s: step(s))
        path.append(end.clone() if steps == n - 1 else cur.clone())
        pts = torch.stack(path).view(-1, *x.shape[1:])
        attrs.append(ph.run("integrate", lambda: compute_ig(model, pts, target[i], method.objective), len(pts)))
    extra = steps < n - 1
    total = ph.extrapolate({"path": (n - 1) * n_img, "integrate": n * n_img}) if extra else sum(ph.sec.values())
    note = "" if getattr(method, "schedule", "authors") == "authors" else "loop runs the authors' schedule"
    return _result(total, n_img, x.shape[0], attrs if not extra else [], extra, note, ph.sec)


def loop_grad_input(model, x, target, method, sync: SyncFn = _nosync, max_images=None, **_) -> LoopRun:
    """Gradient x Input: one F+B per image (batch of 1)."""
    n_img = _subset(x, max_images)
    b = method.baseline_for(x)
    sync()
    t0 = time.perf_counter()
    attrs = [grad_at(model, x[i:i + 1], target[i], method.objective)[0] * (x[i] - b[i]) for i in range(n_img)]
    sync()
    return _result(time.perf_counter() - t0, n_img, x.shape[0], attrs, False)


# -- latent methods (may be extrapolated) -------------------------------------------------------------------------
def _enc(vae, img):
    return vae.encode(img.unsqueeze(0))


def loop_ma_gig(model, x, target, method, sync: SyncFn = _nosync, max_images=None, max_steps=None,
                **_) -> LoopRun:
    """MA-GIG (upstream ``latent_gig``, 2.5): per image 2 encodes; per step s < N-1 a no-grad decode of the path
    point (s >= 1), a decode with graph -> classifier -> backward to z (steering), the latent guided inner loop with
    a quantile over the latent and a slerp; then ``compute_ig`` on the N pixel points (N F+B)."""
    n_img, n = _subset(x, max_images), method.n_steps
    steps = n - 1 if max_steps is None else min(n - 1, max(1, int(max_steps)))
    vae, c = method.vae.on(x.device), x.shape[1]
    b = method.baseline_for(x)
    partial = _slerp if method.use_slerp else _lerp
    ph = _Phases(sync)
    for i in range(n_img):
        z_x, z_b = ph.run("setup", lambda: (_enc(vae, x[i]), _enc(vae, b[i])))
        lat = z_x.shape[1:]
        z_x, z = z_x.flatten(), z_b.flatten().clone()
        l1_total = (z_x - z).abs().sum()
        path = []

        def step(s, z=z, z_x=z_x, l1_total=l1_total, path=path, i=i):
            if s == 0:
                path.append(b[i] if method.anchor_endpoints else vae.decode(z.view(1, *lat), c)[0].detach())
            else:
                with torch.no_grad():
                    path.append(vae.decode(z.view(1, *lat), c)[0])
            zr = z.detach().clone().requires_grad_(True)
            score = _score(model(vae.decode(zr.view(1, *lat), c)), target[i].view(1), method.objective)
            (gz,) = torch.autograd.grad(score.sum(), zr)
            return _guided_inner(z, z_x, gz.detach(), l1_total * (1 - (s + 1) / n), method.fraction, partial)

        for s in range(steps):
            ph.run("path", lambda s=s: step(s))
        last = x[i] if method.anchor_endpoints else vae.decode(z_x.view(1, *lat), c)[0].detach()
        pts = torch.stack(path + [last])
        ph.run("integrate", lambda: compute_ig(model, pts, target[i], method.objective), len(pts))
    extra = steps < n - 1
    total = ph.extrapolate({"path": (n - 1) * n_img, "integrate": n * n_img}) if extra else sum(ph.sec.values())
    return _result(total, n_img, x.shape[0], [], extra, "", ph.sec)


def loop_eig(model, x, target, method, sync: SyncFn = _nosync, max_images=None, max_steps=None, **_) -> LoopRun:
    """EIG (2.6): per image 2 encodes, N no-grad decodes of the latent line (one point each), ``compute_ig``."""
    n_img, n = _subset(x, max_images), method.n_steps
    pts_n = n if max_steps is None else min(n, max(2, int(max_steps)))
    vae, c = method.vae.on(x.device), x.shape[1]
    b = method.baseline_for(x)
    ph = _Phases(sync)
    for i in range(n_img):
        z_x, z_b = ph.run("setup", lambda: (_enc(vae, x[i]), _enc(vae, b[i])))

        def decode_all(z_x=z_x, z_b=z_b):
            out = []
            with torch.no_grad():
                for k in range(pts_n):
                    out.append(vae.decode(z_b + (k / (n - 1)) * (z_x - z_b), c)[0])
            return torch.stack(out)

        pts = ph.run("path", decode_all, pts_n)
        ph.run("integrate", lambda: compute_ig(model, pts, target[i], method.objective), pts_n)
    extra = pts_n < n
    total = ph.extrapolate({"path": n * n_img, "integrate": n * n_img}) if extra else sum(ph.sec.values())
    return _result(total, n_img, x.shape[0], [], extra, "", ph.sec)


def loop_mig(model, x, target, method, sync: SyncFn = _nosync, max_images=None, max_steps=None,
             n_eta: Optional[float] = None, **_) -> LoopRun:
    """Manifold IG (2.7): per image, per eta_i three no-grad decodes (z_{i-1}, z_i, z_{i+1}) and a VJP through the
    decoder (``torch.autograd.functional.vjp``: one more decode + backward), Gauss-Seidel sweeps with an energy check
    before each (at most ``max_iterations``), then T decodes and ``compute_ig``. With ``max_steps`` only that many
    etas are evaluated and the eta phase is extrapolated to ``n_eta`` etas per image (default: the worst case
    (T-2) * 2 * max_iterations; the benchmark passes the count implied by the library run's sweeps)."""
    n_img, t_pts = _subset(x, max_images), method.n_steps
    vae, c = method.vae.on(x.device), x.shape[1]
    b = method.baseline_for(x)
    dt = 1.0 / (t_pts - 1)
    worst = (t_pts - 2) * 2 * max(1, method.max_iterations)
    budget = None if max_steps is None else max(1, int(max_steps))
    ph = _Phases(sync)
    counted = []
    for i in range(n_img):
        z_x, z_b = ph.run("setup", lambda: (_enc(vae, x[i]), _enc(vae, b[i])))
        zs = [z_b + (k / (t_pts - 1)) * (z_x - z_b) for k in range(t_pts)]
        state = {"etas": 0}

        def eta(k):
            with torch.no_grad():
                acc = (vae.decode(zs[k + 1], c) - 2 * vae.decode(zs[k], c) + vae.decode(zs[k - 1], c)) / dt
            _, v = torch.autograd.functional.vjp(lambda z: vae.decode(z, c), zs[k], acc)
            state["etas"] += 1
            return -v

        def run_etas():
            stop = False
            for _ in range(method.max_iterations):
                energy = 0.0
                for k in range(1, t_pts - 1):
                    if budget is not None and state["etas"] >= budget:
                        return
                    energy += float(eta(k).pow(2).sum())
                if energy < method.epsilon:
                    stop = True
                    break
                for k in range(1, t_pts - 1):
                    if budget is not None and state["etas"] >= budget:
                        return
                    zs[k] = zs[k] - method.alpha * eta(k)
            del stop

        ph.run("eta", run_etas, 0)
        ph.done["eta"] = ph.done.get("eta", 0) + state["etas"]
        counted.append(state["etas"])

        def decode_path():
            with torch.no_grad():
                return torch.cat([vae.decode(z, c) for z in zs])

        pts = ph.run("path", decode_path, t_pts)
        ph.run("integrate", lambda: compute_ig(model, pts, target[i], method.objective), t_pts)
    extra = budget is not None
    if extra:
        per_img = float(n_eta) if n_eta is not None else float(worst)
        total = ph.extrapolate({"eta": per_img * n_img})
        note = f"eta phase extrapolated to {per_img:.0f} etas/image" + ("" if n_eta is not None else " (worst case)")
    else:
        total, note = sum(ph.sec.values()), f"{sum(counted) / n_img:.0f} etas/image"
    return _result(total, n_img, x.shape[0], [], extra, note, ph.sec)


# -- AGI and IG2 (upstream .backward() with parameters requiring grad) --------------------------------------------
class _ParamsRequireGrad:
    """Upstream classifiers are not frozen: their ``.backward()`` calls also form parameter gradients."""

    def __init__(self, model):
        self.model = model
        self.saved = None

    def __enter__(self):
        self.saved = [p.requires_grad for p in self.model.parameters()]
        for p in self.model.parameters():
            p.requires_grad_(True)

    def __exit__(self, *exc):
        for p, r in zip(self.model.parameters(), self.saved):
            p.requires_grad_(r)
            p.grad = None


def loop_agi(model, x, target, method, sync: SyncFn = _nosync, max_images=None, num_classes: Optional[int] = None,
             **_) -> LoopRun:
    """AGI (2.8): per image, per target class, per iteration: forward, argmax test (host sync), two ``.backward()``
    through one graph (``retain_graph``), a signed step clamped to the pixel box. Timed for real on ``max_images``
    images (the iteration count is data dependent)."""
    from attribution.methods.agi import agi_target_classes

    n_img = _subset(x, max_images)
    with torch.no_grad():
        n_cls = num_classes or method.num_classes or model(x[:1]).shape[1]
    classes = agi_target_classes(n_cls, method.num_neg_cls)
    lo, hi = method.norm.pixel_bounds(x[:1])
    sync()
    t0 = time.perf_counter()
    with _ParamsRequireGrad(model):
        for i in range(n_img):
            y = int(target[i])
            attr = torch.zeros_like(x[i])
            for t in classes:
                if t == y:
                    continue
                cur = x[i:i + 1].clone()
                for _ in range(method.max_iter):
                    cur = cur.detach().requires_grad_(True)
                    out = model(cur)
                    if int(out.argmax(1)) == t:
                        break
                    p = torch.softmax(out, -1)
                    p[0, t].backward(retain_graph=True)
                    g_adv = cur.grad.clone()
                    cur.grad = None
                    p[0, y].backward()
                    g_lab = cur.grad.clone()
                    nxt = torch.max(torch.min(cur.detach() + method.step_size * g_adv.sign(), hi), lo)
                    attr += (-g_lab * (nxt - cur.detach()))[0]
                    cur = nxt
    sync()
    return _result(time.perf_counter() - t0, n_img, x.shape[0], [], False)


def loop_ig2(model, x, target, method, sync: SyncFn = _nosync, max_images=None, max_steps=None, **_) -> LoopRun:
    """IG2 (2.9): per image, the representation of n_refs references (one forward), ``steps`` path steps (F+B on
    the n_refs copies each, -MSE to the reference representation, normalised step), then ``steps`` F+B for the
    integration (a second pass over the same points, as upstream). References: the next images of the batch."""
    from attribution.methods.ig2 import find_representation_layer

    n_img, steps = _subset(x, max_images), method.steps
    run_steps = steps if max_steps is None else min(steps, max(1, int(max_steps)))
    r = method.n_references
    _, layer = find_representation_layer(model, method.rep_layer)
    captured = {}
    handle = layer.register_forward_pre_hook(lambda m, a: captured.__setitem__("rep", a[0]))
    ph = _Phases(sync)
    try:
        with _ParamsRequireGrad(model):
            for i in range(n_img):
                refs = torch.stack([x[(i + 1 + k) % x.shape[0]] for k in range(r)])

                def setup(refs=refs):
                    with torch.no_grad():
                        model(refs)
                    return captured["rep"].detach()

                rep_ref = ph.run("setup", setup)
                pts = [x[i:i + 1].expand(r, *x.shape[1:]).clone()]

                def path_step(pts=pts, rep_ref=rep_ref):
                    cur = pts[-1].detach().requires_grad_(True)
                    model(cur)
                    loss = -F.mse_loss(captured["rep"], rep_ref, reduction="none").flatten(1).mean(1).sum()
                    loss.backward()
                    g = cur.grad
                    norm = g.flatten(1).norm(dim=1).clamp_min(1e-10).view(-1, 1, 1, 1)
                    pts.append((cur + method.step_size * g / norm).detach())

                for _ in range(run_steps):
                    ph.run("path", path_step)

                def integrate(pts=pts, i=i):
                    attr = torch.zeros_like(pts[0])
                    for k in range(1, len(pts)):
                        cur = pts[k - 1].detach().requires_grad_(True)
                        p = torch.softmax(model(cur), -1)[:, int(target[i])].sum()
                        p.backward()
                        attr += cur.grad * (pts[k - 1] - pts[k])
                    return attr.mean(0)

                ph.run("integrate", integrate, len(pts) - 1)
    finally:
        handle.remove()
    extra = run_steps < steps
    total = ph.extrapolate({"path": steps * n_img, "integrate": steps * n_img}) if extra else sum(ph.sec.values())
    return _result(total, n_img, x.shape[0], [], extra, "", ph.sec)


LOOPS: Dict[str, Callable[..., LoopRun]] = {
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

__all__ = ["LOOPS", "REAL_LOOPS", "NO_LOOP", "LoopRun", "compute_ig", "grad_at", "authors_blur",
           "spectral_path_svd"]
