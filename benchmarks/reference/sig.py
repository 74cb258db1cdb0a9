"""Spectral Integrated Gradients as the SIG authors run it (``SpectralIGExplainer`` / ``SpectralPathGenerator``;
docs/upstream_methods.md section 3): per image, a linear decomposition of x - b into components with a "strength"
in [0, 1], each switched on along the path by a gate that opens earlier the stronger the component is."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .core import compute_ig


def component_scale(strength: torch.Tensor, alpha: float, overlap: float, gating: str = "linear",
                    sigmoid_k: float = 12.0) -> torch.Tensor:
    """``_component_scale`` (3.2): component i switches on at alpha = start_i = (1 - w)(1 - strength_i) and is fully
    on at start_i + w (w = overlap); a hard step 1[alpha >= start_i] when w <= 1e-8."""
    a = torch.as_tensor(alpha, dtype=strength.dtype)
    start = (1.0 - overlap) * (1.0 - strength)
    if overlap <= 1e-8:
        return (a >= start).to(strength.dtype)
    p = ((a - start) / overlap).clamp(0, 1)
    if gating == "linear":  # the YAML default
        return p
    if gating == "cosine":
        return 0.5 - 0.5 * torch.cos(p * math.pi)
    if gating == "sigmoid":  # rescaled so that p = 0 -> 0 and p = 1 -> 1 (up to the 1e-10)
        lo, hi = torch.sigmoid(torch.tensor(-sigmoid_k / 2)), torch.sigmoid(torch.tensor(sigmoid_k / 2))
        return ((torch.sigmoid(sigmoid_k * (p - 0.5)) - lo) / (hi - lo + 1e-10)).clamp(0, 1)
    if gating == "step":
        return (p >= 0.5).to(strength.dtype)
    raise ValueError(f"unknown gating {gating!r}")


def dct_matrix(n: int) -> torch.Tensor:
    """The orthonormal DCT-II matrix M[k, j] = cos(pi/n (j + 1/2) k), row 0 scaled by sqrt(1/n), the rest sqrt(2/n)."""
    m = torch.empty(n, n)
    for k in range(n):
        for j in range(n):
            m[k, j] = math.cos(math.pi / n * (j + 0.5) * k) * math.sqrt((1.0 if k == 0 else 2.0) / n)
    return m


def haar(x: torch.Tensor):
    """One level of the orthonormal Haar transform of [C,H,W]: each 2x2 block -> (a+b+c+d)/2 and three details."""
    a, b, c, d = x[:, 0::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 0::2], x[:, 1::2, 1::2]
    return (a + b + c + d) / 2, [(a - b + c - d) / 2, (a + b - c - d) / 2, (a - b - c + d) / 2]


def ihaar(ll, lh, hl, hh) -> torch.Tensor:
    c, h, w = ll.shape
    out = torch.zeros(c, 2 * h, 2 * w, dtype=ll.dtype, device=ll.device)
    out[:, 0::2, 0::2] = (ll + lh + hl + hh) / 2
    out[:, 0::2, 1::2] = (ll - lh + hl - hh) / 2
    out[:, 1::2, 0::2] = (ll + lh - hl - hh) / 2
    out[:, 1::2, 1::2] = (ll - lh - hl + hh) / 2
    return out


def spectral_state(diff: torch.Tensor, spectral_mode: str = "svd", channel_mode: str = "per_channel",
                   levels: int = 4) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
    """(reconstruct(gates), strength) of one image's diff [C,H,W] (3.1), in the authors' component order.
    ``reconstruct`` maps gates shaped like ``strength`` to the partial reconstruction R [C,H,W]."""
    c, h, w = diff.shape
    if spectral_mode == "svd" and channel_mode == "per_channel":
        # batched over the channels; strength = each singular value over the same channel's largest
        u, s, vh = torch.linalg.svd(diff, full_matrices=False)
        strength = (s / s[:, :1].clamp_min(1e-10)).clamp(0, 1)
        return (lambda g: (u * (s * g).unsqueeze(1)) @ vh), strength
    if spectral_mode == "svd":  # joint: channels stacked vertically, one shared strength vector
        u, s, vh = torch.linalg.svd(diff.reshape(c * h, w), full_matrices=False)
        strength = (s / s[:1].clamp_min(1e-10)).clamp(0, 1)
        return (lambda g: ((u * (s * g).unsqueeze(0)) @ vh).reshape(c, h, w)), strength
    if spectral_mode == "dct":
        # coefficients M_H diff M_W^T; strength 1 - r, r the normalised radius (DC 1, highest corner 0), shared by
        # the channels. There is no FFT mode.
        mh, mw = dct_matrix(h).to(diff), dct_matrix(w).to(diff)
        coeffs = mh @ diff @ mw.T
        strength = torch.empty(h, w, dtype=diff.dtype)
        for u_ in range(h):
            for v_ in range(w):
                strength[u_, v_] = 1 - math.sqrt((u_ / (h - 1)) ** 2 + (v_ / (w - 1)) ** 2) / math.sqrt(2)
        return (lambda g: mh.T @ (coeffs * g) @ mw), strength
    comps = []
    if spectral_mode == "wavelet":
        # Haar levels, stopping early at an odd or < 2 side; components: LL alone, then each (level, band) alone
        ll, details = diff, []
        for _ in range(levels):
            if min(ll.shape[-2:]) < 2 or ll.shape[-2] % 2 or ll.shape[-1] % 2:
                break
            ll, det = haar(ll)
            details.append(det)

        def synth(low, keep):
            cur = low
            for lev in reversed(range(len(details))):
                bands = [details[lev][i] if (lev, i) == keep else torch.zeros_like(cur) for i in range(3)]
                cur = ihaar(cur, *bands)
            return cur

        comps.append(synth(ll, None))
        for lev in range(len(details)):  # the finest level's bands first: the authors' order (quirk, section 9.4)
            for band in range(3):
                comps.append(synth(torch.zeros_like(ll), (lev, band)))
    elif spectral_mode == "laplacian":
        # residual_l = cur - bilinear_up(avgpool2(cur)); components: the low-pass, then each residual alone
        cur, residuals = diff, []
        while len(residuals) < levels and min(cur.shape[-2:]) >= 2:
            low = F.avg_pool2d(cur[None], 2, 2)[0]
            residuals.append(cur - F.interpolate(low[None], size=cur.shape[-2:], mode="bilinear",
                                                 align_corners=False)[0])
            cur = low

        def synth(low, keep):
            out = low
            for lev in reversed(range(len(residuals))):
                out = F.interpolate(out[None], size=residuals[lev].shape[-2:], mode="bilinear",
                                    align_corners=False)[0]
                out = out + (residuals[lev] if lev == keep else 0)
            return out

        comps.append(synth(cur, None))
        for lev in range(len(residuals)):  # the finest residual first (the same quirk)
            comps.append(synth(torch.zeros_like(cur), lev))
    else:
        raise ValueError(f"unknown spectral_mode {spectral_mode!r}")
    stack = torch.stack(comps)
    # strength = linspace(1, 0, #components) in that order
    strength = torch.linspace(1, 0, len(comps), dtype=diff.dtype)
    return (lambda g: (stack * g.view(-1, 1, 1, 1)).sum(0)), strength


def spectral_path(diff: torch.Tensor, base: torch.Tensor, n_steps: int, overlap: float = 0.4,
                  spectral_mode: str = "svd", channel_mode: str = "per_channel", gating: str = "linear",
                  levels: int = 4, sigmoid_k: float = 12.0) -> torch.Tensor:
    """path_k = b + R(gate(strength, alpha_k)), alpha_k = k/(N-1) (alpha = 1 when N <= 1), built point by point
    -> [N,C,H,W]. At alpha = 0 every soft gate is 0 (path_0 = b); at alpha = 1 every gate is 1 (path ~= x)."""
    recon, strength = spectral_state(diff, spectral_mode, channel_mode, levels)
    pts = []
    for k in range(n_steps):
        a = k / (n_steps - 1) if n_steps > 1 else 1.0
        pts.append(base + recon(component_scale(strength, a, overlap, gating, sigmoid_k)))
    return torch.stack(pts)


def spectral_path_svd(diff: torch.Tensor, base: torch.Tensor, n: int, overlap: float) -> torch.Tensor:
    """The benchmarked configuration (svd, per_channel, linear gating) of :func:`spectral_path`."""
    return spectral_path(diff, base, n, overlap)


def authors_sig(model, x: torch.Tensor, baseline: torch.Tensor, target, n_steps: int = 200, overlap: float = 0.4,
                spectral_mode: str = "svd", channel_mode: str = "per_channel", gating: str = "linear", levels: int = 4,
                sigmoid_k: float = 12.0, objective: str = "prob") -> torch.Tensor:
    """SIG of one image [C,H,W]: one decomposition of diff = x - b (b = preprocess(0), the whole [C,H,W] tensor in
    normalised space), N reconstructions, then ``compute_ig`` (N forward+backward, left sum over N - 1 intervals)."""
    path = spectral_path(x - baseline, baseline, n_steps, overlap, spectral_mode, channel_mode, gating, levels,
                         sigmoid_k)
    return compute_ig(model, path, target, objective)
