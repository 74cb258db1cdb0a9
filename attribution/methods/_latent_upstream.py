"""The authors' per-image algorithms for MA-GIG, EIG and MIG, re-implemented from docs/upstream_methods.md sections
1.3, 2.5-2.7 and 4 with their costs intact (batch 1, no reuse, every decode and gradient recomputed).

Not a registered method: the reference that tests compare the batched methods of :mod:`.latent` against, and the
"authors' per-image loop" of the speed benchmark. One fix is applied everywhere: each image is steered by its own
target (upstream passes the whole label batch, section 9.1; identical for the batch-1 DiffID runs).
"""
from __future__ import annotations

import math

import torch

from ..engine.objective import target_score


def _score(model, x, target, objective):
    return target_score(model(x), target, objective)


def compute_ig(model, paths: torch.Tensor, target: torch.Tensor, objective: str = "prob") -> torch.Tensor:
    """Upstream ``compute_ig``: one forward+backward per path point on the batch (the last one included, unused),
    then the left Riemann sum sum_k grad f(p_k) (p_{k+1} - p_k). paths [B, P, C, H, W] -> [B, C, H, W]."""
    grads = []
    for k in range(paths.shape[1]):
        p = paths[:, k].detach().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(_score(model, p, target, objective).sum(), p)
        grads.append(g)
    grads = torch.stack(grads, 1)
    return (grads[:, :-1] * (paths[:, 1:] - paths[:, :-1])).sum(1)


def _slerp_flat(t, v0, v1, dot_threshold=0.9995):
    """Upstream ``slerp`` on one flat vector, float32."""
    a, b = v0.reshape(-1).float(), v1.reshape(-1).float()
    n0, n1 = a.norm(), b.norm()
    if n0 < 1e-9 or n1 < 1e-9:
        return v0 * (1 - t) + v1 * t
    dot = torch.clamp(((a / n0) * (b / n1)).sum(), -1.0, 1.0)
    if dot.abs() > dot_threshold:
        return v0 * (1 - t) + v1 * t
    theta = torch.acos(dot)
    return torch.sin(theta - theta * t) / torch.sin(theta) * v0 + torch.sin(theta * t) / torch.sin(theta) * v1


def _latent_grad(model, vae, z, target, objective):
    zr = z.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(_score(model, vae.decode(zr), target, objective).sum(), zr)
    return g


def ma_gig_paths(model, vae, x, b, target, n_steps=200, fraction=0.05, use_slerp=True, anchor_endpoints=True,
                 objective="prob"):
    """Upstream ``LatentGuidedPathGenerator.get_paths``: per image, per step, float32 L1 and gamma, torch.quantile.
    Returns the pixel paths [B, N, C, H, W]."""
    eps = 1e-9
    out = []
    for i in range(len(x)):
        xi, bi, ti = x[i:i + 1], b[i:i + 1], target[i:i + 1]
        z_in, z_b = vae.encode(xi), vae.encode(bi)
        z, l1_total = z_b.clone(), (z_in - z_b).abs().sum()
        paths = []
        for step in range(n_steps):
            if step == 0:
                paths.append(bi[0] if anchor_endpoints else vae.decode(z).detach()[0])
            elif step == n_steps - 1:
                paths.append(xi[0] if anchor_endpoints else vae.decode(z_in).detach()[0])
                break
            else:
                with torch.no_grad():
                    paths.append(vae.decode(z)[0])
            grad = _latent_grad(model, vae, z, ti, objective)
            l1_target = l1_total * (1 - (step + 1) / n_steps)
            gamma = math.inf
            while gamma > 1.0:
                l1_cur = (z - z_in).abs().sum()
                if torch.isclose(l1_target, l1_cur, rtol=eps, atol=eps):
                    break
                grad = torch.where((z - z_in).abs() < eps, torch.full_like(grad, math.inf), grad)
                thr = torch.quantile(grad.abs().reshape(-1), fraction, interpolation="lower")
                s = (grad.abs() <= thr) & (grad != math.inf)
                l1_s = ((z - z_in).abs() * s).sum()
                gamma = (l1_cur - l1_target) / l1_s if l1_s > 0 else math.inf
                if gamma > 1.0:
                    z = torch.where(s, z_in, z)
                elif use_slerp:
                    z = z.clone()
                    z[s] = _slerp_flat(gamma, z[s], z_in[s])
                else:
                    z = torch.where(s, z + (z_in - z) * gamma, z)
        out.append(torch.stack(paths))
    return torch.stack(out)


def eig_paths(vae, x, b, n_steps=200, use_slerp=False):
    """Upstream ``LatentLinearPathGenerator.get_paths``: per image, one decode per point."""
    out = []
    for i in range(len(x)):
        z_in, z_b = vae.encode(x[i:i + 1]), vae.encode(b[i:i + 1])
        pts = []
        for k in range(n_steps):
            a = k / (n_steps - 1) if n_steps > 1 else 1.0
            z = _slerp_flat(a, z_b, z_in) if use_slerp else z_b + a * (z_in - z_b)
            with torch.no_grad():
                pts.append(vae.decode(z)[0])
        out.append(torch.stack(pts))
    return torch.stack(out)


def _etta(vae, z, z_minus, z_plus, dt):
    with torch.no_grad():
        fd = (vae.decode(z_plus) - 2 * vae.decode(z) + vae.decode(z_minus)) / dt
    return -torch.autograd.functional.vjp(vae.decode, z, fd)[1]


def mig_paths(vae, x, b, n_steps=200, alpha=5e-5, max_iterations=2, epsilon=1000.0):
    """Upstream ``GeodesicPathGenerator.get_paths``: energy over all points, then the in-place (Gauss-Seidel)
    sweep, 3 decodes + 1 VJP per eta, then every point decoded again."""
    out = []
    t = n_steps
    dt = 1.0 / (t - 1) if t > 1 else 1.0
    for i in range(len(x)):
        z_in, z_b = vae.encode(x[i:i + 1]), vae.encode(b[i:i + 1])
        zs = [(z_b + (k / (t - 1)) * (z_in - z_b)).clone() for k in range(t)]
        for _ in range(max_iterations):
            energy = sum(_etta(vae, zs[j], zs[j - 1], zs[j + 1], dt).norm().pow(2).item() for j in range(1, t - 1))
            if energy < epsilon:
                break
            for j in range(1, t - 1):
                zs[j] = zs[j] - alpha * _etta(vae, zs[j], zs[j - 1], zs[j + 1], dt)
        with torch.no_grad():
            out.append(torch.stack([vae.decode(z)[0] for z in zs]))
    return torch.stack(out)
