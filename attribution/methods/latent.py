"""Manifold (latent-path) attribution on a VAE: MA-GIG, Enhanced IG and Manifold IG.

All three build a path in the latent space of a VAE (:mod:`attribution.vae`), decode it into the classifier's
(normalised) input space and integrate pixel-space gradients along the decoded path with the left Riemann sum

    attr = sum_{k=0}^{P-2} grad f(p_k) * (p_{k+1} - p_k),      p_k = D(z_k) (or the raw endpoints, if anchored).

With z_x = E(x), z_b = E(b) (posterior means of the input and of the baseline, ``b`` = normalise(black) by default):

- ``ma_gig`` (MA-GIG, the MA-GIG paper's method; upstream ``latent_gig``): Guided IG run on the latent vector.
  The steering gradient dF/dz = J_D(z)^T grad f(D(z)) comes through the decoder; features of z with the smallest
  |dF/dz| move towards z_x until the latent L1 distance reaches L (1 - (s+1)/N) (L = ||z_x - z_b||_1); the final
  partial move of a step is a slerp of the selected sub-vector (``use_slerp``, the authors' default) or a lerp.
  Endpoints anchored to the raw b and x (``anchor_endpoints``, the MA-GIG repository) or decoded (the SIG copy).
- ``eig`` (Enhanced IG): z_k = lerp (default) or slerp of (z_b, z_x) at alpha_k = k/(N-1); not anchored, so the
  attribution sums to f(D(z_x)) - f(D(z_b)) (docs/upstream_methods.md section 9.2).
- ``mig`` (Manifold IG, Jha et al., ICML 2024): the linear latent path relaxed towards a geodesic of the decoded
  path's energy: eta_i = -J_D(z_i)^T (D(z_{i+1}) - 2 D(z_i) + D(z_{i-1})) / dt, z_i <- z_i - alpha eta_i, at most
  ``max_iterations`` sweeps, stopping when sum_i ||eta_i||^2 < ``epsilon``; not anchored.

Batched over images (and over path points where the algorithm allows), decoder calls chunked to ``vae_batch`` rows
with an automatic back-off on CUDA out-of-memory. Every decoded point is decoded once (upstream decodes MA-GIG
points twice, EIG's chunk borders twice and MIG's points up to 4 times per update). See each ``cost()``.
"""
from __future__ import annotations

import torch

from ..engine.chunking import Chunker
from ..engine.guided import guided_step, l1_distance, l1_schedule, native_lerp_move
from ..engine.integrate import PathSum, integrate_path
from ..engine.objective import target_score
from ..engine.slerp import slerp, slerp_move
from ..errors import ConfigError, check_bool, check_choice, check_int, check_real
from ..vae import as_vae
from .base import STEERED_PATH, Attribution, FixedPathMethod, PathMethod, register_method

MIG_UPDATES = ("gauss_seidel", "jacobi")


# -- the shared machinery ------------------------------------------------------------------------------------
def vae_chunk_default(device: torch.device, row_shape=None) -> int:
    """Rows per VAE call when ``vae_batch`` is None: 16 on CUDA, 4 on the CPU."""
    return 16 if device.type == "cuda" else 4


class LatentPathMethod(PathMethod):
    """Base of the VAE methods: the VAE adapter, batched/chunked decoding and the joint decoder-classifier pass.

    Extra shared options: ``vae`` (a :class:`attribution.vae.VAEAdapter`, a diffusers autoencoder, or a mapping of
    ``build_vae`` keywords; required), ``vae_batch`` (rows per decoder call; None: 16 on CUDA, 4 on CPU; halved
    automatically on CUDA out-of-memory), ``return_path`` (store the pixel path points [B, P, C, H, W] in
    ``Attribution.extras["path"]``, for tests and figures).
    """

    needs_vae = True

    def __init__(self, vae=None, vae_batch: int | None = None, return_path: bool = False, **kwargs):
        super().__init__(**kwargs)
        if vae is None:
            raise ConfigError(
                f"'{self.name}' is a VAE method without a VAE: pass vae= (an attribution.vae.build_vae(...) adapter, "
                f"e.g. build_vae(kind='kl', source='stabilityai/sd-vae-ft-mse')), or choose the `vae=` config group "
                f"in the harness (vae=sd2 as the authors, vae=mnist_kl offline)")
        self.return_path = check_bool("return_path", return_path)
        self.vae = as_vae(vae, self.norm.mean, self.norm.std)
        self.vae_chunker = Chunker(vae_batch, "method.vae_batch", default=vae_chunk_default)

    def _vae_context(self, device):
        return self.evaluator.autocast_context(device)

    def _check_size(self, decoded: torch.Tensor):
        """Fail before the classifier sees a decoded image whose size differs from the input's."""
        if decoded.shape[-2:] != self._image_hw:
            raise ConfigError(
                f"the VAE '{self.vae.name}' decodes {tuple(self._image_hw)} images to {tuple(decoded.shape[-2:])}: "
                f"the image size must be a multiple of the VAE's down-sampling factor (8 for the SD VAEs); resize "
                f"the dataset (dataset.image_size) accordingly")

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior means of the rows of x, flattened -> [N, c*h*w]; sets ``self._lat_shape``."""
        z = self.vae_chunker.map(self.vae.encode, x)
        self._lat_shape = z.shape[1:]
        return z.flatten(1)

    def _decode(self, z: torch.Tensor, channels: int) -> torch.Tensor:
        """D(z) for flat latents [N, d] without a graph -> [N, C, H, W]."""
        def fn(zc):
            with torch.no_grad(), self._vae_context(zc.device):
                out = self.vae.decode(zc.view(-1, *self._lat_shape), channels).float()
            self._check_size(out)
            return out

        return self.vae_chunker.map(fn, z)

    def _decode_grad(self, model, z: torch.Tensor, target: torch.Tensor, channels: int):
        """One decoder forward with a graph, classifier forward+backward and decoder backward per row.

        Returns (D(z) [N,C,H,W], df/dx at D(z) [N,C,H,W], df/dz [N, d], f(D(z)) [N]): one backward gives both the
        pixel gradient (integration) and the latent gradient (steering).
        """
        def fn(zc, tc):
            with torch.enable_grad():
                zr = zc.detach().view(-1, *self._lat_shape).requires_grad_(True)
                with self._vae_context(zc.device):
                    xd = self.vae.decode(zr, channels)
                    self._check_size(xd)
                    logits = model(xd)
                score = target_score(logits, tc, self.objective)
                gx, gz = torch.autograd.grad(score.sum(), [xd, zr])
            return xd.detach().float(), gx.float(), gz.flatten(1).float(), score.detach()

        return self.vae_chunker.map(fn, z, target)

    def _vjp(self, z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """J_D(z)^T v for flat latents z [N, d] and pixel vectors v [N, C, H, W] (decoder forward + backward)."""
        def fn(zc, vc):
            with torch.enable_grad():
                zr = zc.detach().view(-1, *self._lat_shape).requires_grad_(True)
                with self._vae_context(zc.device):
                    out = self.vae.decode(zr, vc.shape[1])
                (g,) = torch.autograd.grad(out, zr, grad_outputs=vc.to(out.dtype))
            return g.flatten(1).float()

        return self.vae_chunker.map(fn, z, v)

    def _setup(self, model, x):
        self.vae.on(x.device)
        self._image_hw = x.shape[-2:]
        b = self.baseline_for(x)
        zz = self._encode(torch.cat([x, b]))
        return b, zz[: len(x)], zz[len(x):]

    @staticmethod
    def _finish(attr, f_start, f_end, path=None, **extras) -> Attribution:
        if path is not None:
            extras["path"] = path
        return Attribution(attr, f_start, f_end, extras)



# -- MA-GIG ----------------------------------------------------------------------------------------------------
@register_method("ma_gig", display="MA-GIG", order=10, aliases=("magig", "latentgig"))
class MAGIG(LatentPathMethod):
    """MA-GIG: Guided IG in a VAE's latent space (upstream ``latent_gig``; docs/upstream_methods.md section 2.5).

    Args (besides the shared ones): ``fraction`` (share of the latent features moved per inner pass, paper 0.05),
    ``use_slerp`` (final partial move of each step as a slerp of the selected sub-vector; paper true),
    ``anchor_endpoints`` (True: path[0] = raw b, path[-1] = raw x, as the MA-GIG repository, so the attribution
    sums to f(x) - f(b); False: the decoded D(z_b) and D(z_x), as the unused SIG-repository copy).

    Schedule (as upstream): N = ``n_steps`` stored points; point s = 1..N-2 is D(z_s) with z_s at latent L1
    distance L (1 - s/N) from z_x (exactly with lerp; slerp does not meet the L1 target exactly and the next step
    measures the new distance); the last segment spans 2L/N. The update from the last decoded point is never
    decoded upstream, so it is not computed here.

    Reuse (docs/upstream_methods.md section 12.3): each step runs decoder (with graph) -> classifier -> one backward
    that yields both df/dx at D(z_s) (the integration gradient) and df/dz_s (the steering gradient); D(z_s) is kept
    as the path point. Upstream recomputes every pixel gradient in ``compute_ig`` and decodes every point twice.

    Images are batched: per-image thresholds, L1 targets and slerps are tensor ops; only the steps (and the inner
    selection passes, at most about 1/fraction + 1 per step) are a Python loop. Label broadcast bug of upstream
    (section 9.1) does not occur: each image is steered by its own target.
    Reproducibility: as Guided IG, the path follows gradient rankings, so rounding differences (chunk sizes,
    reduced precision) change it; results/precision/ has the measurement.
    """

    name = "ma_gig"
    excluded_options = STEERED_PATH

    def __init__(self, n_steps: int = 200, fraction: float = 0.05, use_slerp: bool = True,
                 anchor_endpoints: bool = True, **kwargs):
        super().__init__(n_steps=n_steps, **kwargs)
        self.fraction = check_real("fraction", fraction, 0, 1, low_open=True)
        self.use_slerp = check_bool("use_slerp", use_slerp)
        self.anchor_endpoints = check_bool("anchor_endpoints", anchor_endpoints)

    def latent_step(self, z: torch.Tensor, z_x: torch.Tensor, grad: torch.Tensor, l1_target: torch.Tensor):
        """One Guided-IG step in latent space, as the authors' ``LatentGuidedPathGenerator``: the engine's
        :func:`attribution.engine.guided.guided_step` with a slerp (or the authors' lerp) partial move, gamma not
        clamped (upstream's ``assert gamma > 0`` is commented out: after a slerp overshoot a negative gamma moves
        the selection back) and |z - z_x| in the latents' float32."""
        move = slerp_move if self.use_slerp else native_lerp_move
        return guided_step(z, z_x, grad, l1_target, self.fraction, partial_move=move, clamp_gamma=False,
                           diff_dtype=None)

    def _attribute(self, model, x, target):
        n, c = self.n_steps, x.shape[1]
        b, z_x, z_b = self._setup(model, x)
        l1_total = l1_distance(z_x, z_b)
        z = z_b.clone()
        total = PathSum(self.integration)
        path = [] if self.return_path else None
        prev_p = prev_g = prev_f = f_start = None
        for s in range(n - 1):
            steer = s <= n - 3  # z_{s+1} is decoded (and so needs this step's latent gradient) iff s+1 <= N-2
            gz = None
            if s == 0 and self.anchor_endpoints:
                p = b
                g, f = self.evaluator.grad(model, b, target)  # the raw baseline's own pixel gradient
                if steer:
                    _, _, gz, _ = self._decode_grad(model, z, target, c)
            elif steer:
                p, g, gz, f = self._decode_grad(model, z, target, c)
            else:  # the last decoded point: its pixel gradient only
                p = self._decode(z, c)
                g, f = self.evaluator.grad(model, p, target)
            if s == 0:
                f_start = f
            if prev_p is not None:
                step = p.double() - prev_p.double()
                total.add(prev_g.double().unsqueeze(1), prev_f.unsqueeze(1), step.unsqueeze(1))
            if path is not None:
                path.append(p)
            prev_p, prev_g, prev_f = p, g, f
            if steer:
                z = self.latent_step(z, z_x, gz, l1_schedule(l1_total, s, n))
        end = x if self.anchor_endpoints else self._decode(z_x, c)
        total.add(prev_g.double().unsqueeze(1), prev_f.unsqueeze(1), (end.double() - prev_p.double()).unsqueeze(1))
        f_end = self.evaluator.score(model, end, target)
        if path is not None:
            path = torch.stack(path + [end], 1)
        return self._finish(total.finish(f_end).float(), f_start, f_end, path)

    def path_cost(self, height=256, width=256):
        """Rows per image (N = n_steps >= 3): classifier fb = N (anchored: N-1 decoded points incl. D(z_b), whose
        pixel gradient only steers, + the raw baseline) or N-1 (not anchored), f = 1 (f at the input end);
        decoder forwards N-1 (anchored) or N (+ D(z_x)), decoder backwards N-2, encoder 2.
        Upstream (N=200): 399 fb, 397 decoder forwards, 199 decoder backwards, 2 encoder."""
        n = self.n_steps
        steer = max(0, n - 2)  # steps whose latent gradient is used
        if self.anchor_endpoints:
            dec = (n - 2) + (1 if steer else 0)
            fb = (n - 2) + (1 if steer else 0) + 1
        else:
            dec, fb = n, n - 1
        return {"fb": fb, "f": 1, "decoder_f": dec, "decoder_b": steer, "encoder": 2}

    def __repr__(self):
        return (f"MAGIG(n_steps={self.n_steps}, fraction={self.fraction}, use_slerp={self.use_slerp}, "
                f"anchor_endpoints={self.anchor_endpoints}, vae={self.vae.name!r})")


# -- EIG -------------------------------------------------------------------------------------------------------
class _DecodedPath:
    """points_fn for :func:`integrate_path` over latents given by ``latent_fn(start, stop) -> [B, n, d]``.

    Decodes each point once (integrate_path asks for a chunk's last point again as the next chunk's first),
    optionally swaps the first and last points for the raw baseline and input, and optionally records the path.
    """

    def __init__(self, method, latent_fn, n_points, like, first=None, last=None, record=False):
        self.m, self.latent_fn, self.n, self.like = method, latent_fn, n_points, like
        self.first, self.last = first, last
        self.cache = None  # (index, [B, C, H, W]) of the last point handed out
        self.points = [] if record else None

    def __call__(self, start, stop):
        pts, lo, hi = [], start, stop
        if self.cache is not None and self.cache[0] == lo:
            pts.append(self.cache[1].unsqueeze(1))
            lo += 1
        if lo == 0 and hi > 0 and self.first is not None:
            pts.append(self.first.unsqueeze(1))
            lo += 1
        tail = None
        if hi == self.n and hi > lo and self.last is not None:
            tail = self.last.unsqueeze(1)
            hi -= 1
        if hi > lo:
            z = self.latent_fn(lo, hi)
            bsz, k = z.shape[:2]
            dec = self.m._decode(z.reshape(bsz * k, -1), self.like.shape[1])
            pts.append(dec.view(bsz, k, *dec.shape[1:]))
        if tail is not None:
            pts.append(tail)
        out = torch.cat(pts, 1)
        if self.points is not None:
            self.points.append(out if self.cache is None else out[:, 1:])
        self.cache = (stop - 1, out[:, -1])
        return out


@register_method("eig", display="EIG", order=3)
class EIG(FixedPathMethod, LatentPathMethod):
    """Enhanced Integrated Gradients: IG along a straight (or slerp) latent path, decoded (upstream ``eig``).

    path_k = D(z_b + alpha_k (z_x - z_b)), alpha_k = k/(N-1), k = 0..N-1 (``use_slerp``: D(slerp(alpha_k, z_b, z_x))
    on each image's whole latent as one vector; upstream's ``LatentLinearPathGenerator`` option, off in ``eig``).
    Endpoints are reconstructions (upstream), so the attribution sums to f(D(z_x)) - f(D(z_b)); the option
    ``anchor_endpoints`` (not upstream) swaps them for the raw b and x. Images x points are batched in chunks.
    """

    name = "eig"

    def __init__(self, n_steps: int = 200, use_slerp: bool = False, anchor_endpoints: bool = False, **kwargs):
        super().__init__(n_steps=n_steps, **kwargs)
        self.use_slerp = check_bool("use_slerp", use_slerp)
        self.anchor_endpoints = check_bool("anchor_endpoints", anchor_endpoints)

    def latents(self, z_b: torch.Tensor, z_x: torch.Tensor, start: int = 0, stop: int | None = None):
        """Latent path points start..stop-1 -> [B, stop-start, d]."""
        n = self.n_steps
        stop = n if stop is None else stop
        alphas = torch.tensor([k / (n - 1) for k in range(start, stop)], dtype=torch.float64, device=z_b.device)
        if self.use_slerp:
            return slerp(alphas.expand(len(z_b), -1), z_b, z_x)
        a = alphas.float().view(1, -1, 1)
        return z_b.unsqueeze(1) + a * (z_x - z_b).unsqueeze(1)

    def latents_at(self, z_b: torch.Tensor, z_x: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
        """Latent path points at alphas ([S] or [B, S], float64) -> [B, S, d] (for the other rules)."""
        a = alphas.to(z_b.device).expand(len(z_b), -1)
        if self.use_slerp:
            return slerp(a, z_b, z_x)
        return z_b.unsqueeze(1) + a.float().unsqueeze(-1) * (z_x - z_b).unsqueeze(1)

    def _attribute(self, model, x, target):
        b, z_x, z_b = self._setup(model, x)
        anchored = self.anchor_endpoints
        pts = _DecodedPath(self, lambda s, e: self.latents(z_b, z_x, s, e), self.n_steps, x,
                           first=b if anchored else None, last=x if anchored else None,
                           record=self.return_path and self.default_grid)

        def points_at(alphas):
            z = self.latents_at(z_b, z_x, alphas)
            bsz, k = z.shape[:2]
            dec = self._decode(z.reshape(bsz * k, -1), x.shape[1]).view(bsz, k, *x.shape[1:])
            if anchored:  # the raw baseline and input at the two ends
                a = alphas.to(x.device).expand(bsz, -1)
                dec = torch.where((a == 0).view(bsz, k, 1, 1, 1), b.unsqueeze(1), dec)
                dec = torch.where((a == 1).view(bsz, k, 1, 1, 1), x.unsqueeze(1), dec)
            return dec

        attr, f0, f1 = self.integrate(model, x, target, pts, points_at, self.n_steps)
        return self._finish(attr, f0, f1, torch.cat(pts.points, 1) if pts.points else None)

    def path_cost(self, height=256, width=256):
        """Rows per image: classifier fb N-1 and f 1 (the left sum needs no gradient at the last point; upstream
        computes N), decoder forwards N (N-2 if anchored), no decoder backward, encoder 2."""
        n = self.n_steps
        return {"fb": n - 1, "f": 1, "decoder_f": n - 2 if self.anchor_endpoints else n, "decoder_b": 0,
                "encoder": 2}


# -- Manifold IG -----------------------------------------------------------------------------------------------
@register_method("mig", display="MIG", order=4)
class ManifoldIG(LatentPathMethod):
    """Manifold Integrated Gradients (Jha et al., ICML 2024) as the MA-GIG authors run it (upstream ``mig``, section
    2.7): the latent line z_i = z_b + (i/(T-1)) (z_x - z_b), T = ``n_steps``, relaxed towards a geodesic.

    eta_i = -J_D(z_i)^T (D(z_{i+1}) - 2 D(z_i) + D(z_{i-1})) / dt, dt = 1/(T-1) (upstream divides by dt, not dt^2).
    Per iteration (at most ``max_iterations``): energy = sum_{i=1}^{T-2} ||eta_i||^2; stop if energy < ``epsilon``
    (per image); otherwise update z_i <- z_i - ``alpha`` eta_i for i = 1..T-2. The decoded path D(z_0..z_{T-1})
    (endpoints D(z_b), D(z_x): not anchored) is integrated with the left Riemann sum.

    ``update``:
    - ``"gauss_seidel"`` (default, upstream): the sweep is sequential and in place, point i sees the updated z_{i-1}.
      Batched over images; the energy's etas are one batched VJP over all points, the sweep reuses eta_1 and then
      needs one VJP and one re-decode per point (upstream: 4 decodes + 1 decoder backward per eta).
    - ``"jacobi"`` (deviation, faster): every interior point is updated at once with the etas of the energy
      evaluation, then re-decoded in one batch. A different (simultaneous) iteration, not the authors'.
    Decodes are cached: a point is decoded again only after it moved; the final path costs no decode.
    ``Attribution.extras``: ``mig_sweeps`` (update sweeps per image) and ``mig_energy`` (the last energy).
    """

    name = "mig"
    excluded_options = STEERED_PATH

    def __init__(self, n_steps: int = 200, alpha: float = 5e-5, max_iterations: int = 2, epsilon: float = 1000.0,
                 update: str = "gauss_seidel", anchor_endpoints: bool = False, **kwargs):
        super().__init__(n_steps=n_steps, **kwargs)
        self.alpha = check_real("alpha", alpha, allowed="a finite number (the step size of the geodesic updates)")
        self.max_iterations = check_int("max_iterations", max_iterations, 0)
        self.epsilon = check_real("epsilon", epsilon, finite=False,
                                  allowed="a number (the energy below which the relaxation stops)")
        self.update = check_choice("update", update, MIG_UPDATES)
        self.anchor_endpoints = check_bool("anchor_endpoints", anchor_endpoints)

    def _etas(self, zs, xs, dt):
        """eta for the interior points of the given images: zs [b, T, d], xs [b, T, C, H, W] -> [b, T-2, d]."""
        nb, t = zs.shape[:2]
        v = (xs[:, 2:] - 2 * xs[:, 1:-1] + xs[:, :-2]) / dt
        g = self._vjp(zs[:, 1:-1].reshape(nb * (t - 2), -1), v.reshape(nb * (t - 2), *v.shape[2:]))
        return -g.view(nb, t - 2, -1)

    def _attribute(self, model, x, target):
        t, c, bsz = self.n_steps, x.shape[1], x.shape[0]
        b, z_x, z_b = self._setup(model, x)
        dt = 1.0 / (t - 1)
        ts = torch.tensor([i / (t - 1) for i in range(t)], dtype=torch.float32, device=x.device).view(1, -1, 1)
        zs = z_b.unsqueeze(1) + ts * (z_x - z_b).unsqueeze(1)  # [B, T, d]
        xs = self._decode(zs.reshape(bsz * t, -1), c)
        xs = xs.view(bsz, t, *x.shape[1:])
        sweeps = torch.zeros(bsz, dtype=torch.long, device=x.device)
        energy = torch.full((bsz,), float("nan"), dtype=torch.float64, device=x.device)
        ids = torch.arange(bsz, device=x.device)
        for _ in range(self.max_iterations if t >= 3 else 0):
            eta = self._etas(zs[ids], xs[ids], dt)
            e = eta.double().pow(2).sum((1, 2))
            energy[ids] = e
            keep = ~(e < self.epsilon)
            ids, eta = ids[keep], eta[keep]
            if len(ids) == 0:
                break
            if self.update == "jacobi":
                zs[ids, 1:-1] = zs[ids, 1:-1] - self.alpha * eta
                nb = len(ids)
                xs[ids, 1:-1] = self._decode(zs[ids, 1:-1].reshape(nb * (t - 2), -1), c).view(nb, t - 2, *x.shape[1:])
            else:
                for i in range(1, t - 1):
                    if i == 1:  # nothing changed since the energy pass: same eta_1
                        e_i = eta[:, 0]
                    else:
                        v = (xs[ids, i + 1] - 2 * xs[ids, i] + xs[ids, i - 1]) / dt
                        e_i = -self._vjp(zs[ids, i], v)
                    zs[ids, i] = zs[ids, i] - self.alpha * e_i
                    xs[ids, i] = self._decode(zs[ids, i], c)
            sweeps[ids] += 1
        if self.anchor_endpoints:
            xs[:, 0], xs[:, -1] = b, x
        attr, f0, f1 = integrate_path(model, lambda s, e: xs[:, s:e], t, target, self.evaluator, bsz,
                                      row_shape=x.shape[1:], integration=self.integration)
        return self._finish(attr, f0, f1, xs if self.return_path else None, mig_sweeps=sweeps, mig_energy=energy)

    def path_cost(self, height=256, width=256):
        """Rows per image at most (every image runs all ``max_iterations`` sweeps; T = n_steps, K = max_iterations):
        classifier fb T-1, f 1; encoder 2; decoder forwards T (the line, cached) + K (T-2) (energy VJPs) +
        K ((T-3) VJPs + (T-2) re-decodes) for Gauss-Seidel, or T + 2K (T-2) for Jacobi; decoder backwards
        K (2T-5) (Gauss-Seidel) or K (T-2) (Jacobi). Fewer when the energy falls below epsilon (best case:
        T + T-2 forwards, T-2 backwards). Upstream (T=200, K=2): up to 3,368 forwards and 792 backwards."""
        t, k = self.n_steps, self.max_iterations if self.n_steps >= 3 else 0
        if self.update == "jacobi":
            dec_f, dec_b = t + 2 * k * (t - 2), k * (t - 2)
        else:
            dec_f, dec_b = t + k * (t - 2) + k * ((t - 3) + (t - 2)), k * (t - 2) + k * (t - 3)
        return {"fb": t - 1, "f": 1, "decoder_f": dec_f, "decoder_b": dec_b, "encoder": 2}

    def __repr__(self):
        return (f"ManifoldIG(n_steps={self.n_steps}, alpha={self.alpha}, max_iterations={self.max_iterations}, "
                f"epsilon={self.epsilon}, update={self.update!r}, vae={self.vae.name!r})")
