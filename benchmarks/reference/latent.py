"""The VAE methods as the authors run them: MA-GIG (``LatentGuidedPathGenerator``), EIG
(``LatentLinearPathGenerator``) and Manifold IG (``GeodesicPathGenerator``); docs/upstream_methods.md sections 2.5-2.7
and 4, with their costs intact (batch 1, every decode and gradient recomputed, section 9.11).

``vae`` is a :class:`attribution.vae.VAEAdapter` (or anything with ``encode(x [1,C,H,W]) -> z [1,c,h,w]`` and
``decode(z, channels) -> [1,C,H,W]``): like the authors' ``TransformWrapper`` (section 4) it maps the normalised input
to raw pixels before encoding and re-normalises after decoding, so every path point lives in the classifier's space.
One fix everywhere: each image is steered by its own target (upstream passes the whole label batch, section 9.1;
identical at DiffID's batch 1).
"""
from __future__ import annotations

import torch

from .core import NO_CLOCK, compute_ig, lerp, score, slerp
from .guided_ig import guided_inner


def _latent_grad(model, vae, z: torch.Tensor, target, channels: int, objective: str) -> torch.Tensor:
    """d score(f(D(z))) / dz: a decode with graph, the classifier forward+backward, the decoder backward."""
    zr = z.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(score(model(vae.decode(zr, channels)), target, objective), zr)
    return g.detach()


# -- MA-GIG (2.5) ------------------------------------------------------------------------------------------------
def ma_gig_path(model, vae, x: torch.Tensor, baseline: torch.Tensor, target, n_steps: int = 200,
                fraction: float = 0.05, use_slerp: bool = True, anchor_endpoints: bool = True,
                objective: str = "prob", clock=NO_CLOCK, max_steps: int | None = None) -> torch.Tensor:
    """MA-GIG's pixel path of one image [C,H,W] -> [N,C,H,W]: Guided IG (section 2.4) run in the VAE latent space.

    ``anchor_endpoints`` (MA-GIG) stores the raw b and x as the first and last points; False (the SIG repo's
    variant) decodes them. ``max_steps`` (timing only) stops after that many guided steps."""
    c = x.shape[0]
    steps = n_steps - 1 if max_steps is None else min(n_steps - 1, max(1, int(max_steps)))
    # two encodes: z_x = E(x), z_b = E(b) (posterior means); L is measured in latent space
    with clock.phase("setup"):
        z_x, z_b = vae.encode(x[None]), vae.encode(baseline[None])
    z = z_b.clone()
    l1_total = (z_x - z).abs().sum()
    path = []
    for s in range(steps):
        with clock.phase("path"):
            # store the path point: s = 0 the raw baseline (anchored), else D(z_s), a no-grad decode that the
            # gradient pass below decodes again (section 9.11)
            if s == 0:
                path.append(baseline.clone() if anchor_endpoints else vae.decode(z, c)[0].detach())
            else:
                with torch.no_grad():
                    path.append(vae.decode(z, c)[0])
            # the latent gradient steers the path only: decoder with graph -> classifier -> backward to z
            g = _latent_grad(model, vae, z, target, c, objective)
            # the same inner loop as Guided IG on z (quantile over the latent dims); the partial move is a slerp of
            # the selected sub-vector (no norm interpolation, so the L1 target is generally not met exactly) or a
            # lerp; the gamma > 0 assert is commented out upstream, so no drift guard
            guided_inner(z, z_x, g, l1_total * (1 - (s + 1) / n_steps), fraction, slerp if use_slerp else lerp,
                         gamma_floor=None)
    # s = N - 1: the raw input x (anchored). The update made at s = N - 2 is never decoded: its gradient pass is wasted
    path.append(x.clone() if anchor_endpoints else vae.decode(z_x, c)[0].detach())
    return torch.stack(path)


def authors_ma_gig(model, vae, x, baseline, target, n_steps: int = 200, fraction: float = 0.05, use_slerp: bool = True,
                   anchor_endpoints: bool = True, objective: str = "prob", clock=NO_CLOCK,
                   max_steps: int | None = None) -> torch.Tensor:
    """MA-GIG of one image: ``compute_ig`` on the pixel path [b, D(z_1), .., D(z_{N-2}), x]; the attribution uses
    pixel gradients (N more forward+backward), the latent ones only steered. Per image about 2N - 1 F+B, 2N - 3
    decodes and N - 1 decoder backwards (section 2.5)."""
    path = ma_gig_path(model, vae, x, baseline, target, n_steps, fraction, use_slerp, anchor_endpoints, objective,
                       clock, max_steps)
    with clock.phase("integrate", len(path)):
        return compute_ig(model, path, target, objective)


# -- EIG (2.6) ---------------------------------------------------------------------------------------------------
def eig_path(vae, x: torch.Tensor, baseline: torch.Tensor, n_steps: int = 200, use_slerp: bool = False,
             clock=NO_CLOCK, max_points: int | None = None) -> torch.Tensor:
    """EIG's path of one image: D(z_b + alpha_k (z_x - z_b)), alpha_k = k/(N-1), one no-grad decode per point.
    The endpoints are reconstructions, not anchored. ``max_points`` (timing only) decodes only the first ones."""
    c = x.shape[0]
    pts_n = n_steps if max_points is None else min(n_steps, max(2, int(max_points)))
    with clock.phase("setup"):
        z_x, z_b = vae.encode(x[None]), vae.encode(baseline[None])
    pts = []
    with clock.phase("path", pts_n):
        for k in range(pts_n):
            a = k / (n_steps - 1) if n_steps > 1 else 1.0
            z = slerp(a, z_b, z_x) if use_slerp else z_b + a * (z_x - z_b)
            with torch.no_grad():
                pts.append(vae.decode(z, c)[0])
    return torch.stack(pts)


def authors_eig(model, vae, x, baseline, target, n_steps: int = 200, use_slerp: bool = False, objective: str = "prob",
                clock=NO_CLOCK, max_points: int | None = None) -> torch.Tensor:
    """EIG of one image: ``compute_ig`` on ``eig_path``; it sums to f(D(E(x))) - f(D(E(b))). 2 E + N D + N F+B."""
    path = eig_path(vae, x, baseline, n_steps, use_slerp, clock, max_points)
    with clock.phase("integrate", len(path)):
        return compute_ig(model, path, target, objective)


# -- Manifold IG (2.7) -----------------------------------------------------------------------------------------------
def _eta(vae, z, z_minus, z_plus, dt: float, c: int) -> torch.Tensor:
    """eta_i = -J_D(z_i)^T (D(z_{i+1}) - 2 D(z_i) + D(z_{i-1})) / dt: three no-grad decodes (normalised pixel space,
    divided by dt, not dt^2), then ``torch.autograd.functional.vjp``: one more decode and a decoder backward."""
    with torch.no_grad():
        fd = (vae.decode(z_plus, c) - 2 * vae.decode(z, c) + vae.decode(z_minus, c)) / dt
    return -torch.autograd.functional.vjp(lambda t: vae.decode(t, c), z, fd)[1]


def mig_path(vae, x: torch.Tensor, baseline: torch.Tensor, n_steps: int = 200, alpha: float = 5e-5,
             max_iterations: int = 2, epsilon: float = 1000.0, clock=NO_CLOCK,
             max_etas: int | None = None) -> tuple[torch.Tensor, int]:
    """Manifold IG's path of one image -> (path [T,C,H,W], how many etas were computed).

    ``max_etas`` (timing only) stops the relaxation after that many eta evaluations; ``clock.phase("eta")`` times
    the whole relaxation and its count is added afterwards."""
    c, t = x.shape[0], n_steps
    dt = 1.0 / (t - 1) if t > 1 else 1.0
    with clock.phase("setup"):
        z_x, z_b = vae.encode(x[None]), vae.encode(baseline[None])
    # the latent path starts as the straight line z_i = z_b + (i/(T-1)) (z_x - z_b)
    zs = [(z_b + (k / (t - 1)) * (z_x - z_b)).clone() for k in range(t)]
    n_etas = 0

    def budget_left():
        return max_etas is None or n_etas < max_etas

    with clock.phase("eta", 0):
        for _ in range(max_iterations):
            # energy over all interior points first; stop when it is below epsilon
            energy = 0.0
            for j in range(1, t - 1):
                if not budget_left():
                    break
                energy += _eta(vae, zs[j], zs[j - 1], zs[j + 1], dt, c).norm().pow(2).item()
                n_etas += 1
            if not budget_left() or energy < epsilon:
                break
            # then one sweep in place (Gauss-Seidel): point j uses the already-updated z_{j-1}; endpoints fixed
            for j in range(1, t - 1):
                if not budget_left():
                    break
                zs[j] = zs[j] - alpha * _eta(vae, zs[j], zs[j - 1], zs[j + 1], dt, c)
                n_etas += 1
            if not budget_left():
                break
    clock.count("eta", n_etas)
    # every point decoded again (no grad); the endpoints are the reconstructions D(z_b), D(z_x)
    with clock.phase("path", t):
        with torch.no_grad():
            path = torch.stack([vae.decode(z, c)[0] for z in zs])
    return path, n_etas


def authors_mig(model, vae, x, baseline, target, n_steps: int = 200, alpha: float = 5e-5, max_iterations: int = 2,
                epsilon: float = 1000.0, objective: str = "prob", clock=NO_CLOCK, max_etas: int | None = None):
    """Manifold IG of one image: ``compute_ig`` on ``mig_path``."""
    path, _ = mig_path(vae, x, baseline, n_steps, alpha, max_iterations, epsilon, clock, max_etas)
    with clock.phase("integrate", len(path)):
        return compute_ig(model, path, target, objective)
