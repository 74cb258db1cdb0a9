"""Linear, exactly invertible decompositions of an image difference and the gates that switch them on (SIG).

Spectral Integrated Gradients (SIG, KDD 2026) writes the difference d = x - b as a sum of components, gives
each component a "strength" in [0, 1], and builds the path b + R(d, alpha) in which strong components switch
on early and weak ones late (docs/upstream_methods.md section 3). Everything here is batched over images: a
decomposition is computed once for a [B,C,H,W] batch and then reconstructed for a chunk of S alphas at once
as [B,S,C,H,W] with batched matmuls.

Decompositions (``spectral_mode``):

- ``svd``, ``channel_mode="per_channel"``: d_c = U_c diag(s_c) V_c^T per channel (thin SVD, K = min(H, W));
  strength_{c,i} = clamp(s_{c,i} / max(s_{c,1}, 1e-10), 0, 1), relative to the *same channel's* largest value.
- ``svd``, ``channel_mode="joint"``: one thin SVD of d reshaped to (C*H) x W (channels stacked vertically),
  K = min(C*H, W) components with one strength vector per image.
- ``dct``: orthonormal DCT-II in matrix form, coeffs = M_H d M_W^T per channel; strength[u, v] = 1 - r with
  r = sqrt((u/(H-1))^2 + (v/(W-1))^2) / sqrt(2) (DC 1, highest corner 0), shared by channels and images.
- ``wavelet``: orthonormal Haar, ``wavelet_levels`` levels (stops early when a side is odd or < 2).
  Components: the approximation LL reconstructed alone, then each (level, band) for bands LH, HL, HH
  reconstructed alone: 1 + 3L components with strengths linspace(1, 0, 1 + 3L) in component order.
- ``laplacian``: residual_l = cur - bilinear_up(avgpool2(cur)) for ``laplacian_levels`` levels (stops when a side
  is < 2); components: the low-pass band upsampled level by level, then each residual upsampled alone:
  1 + L components with strengths linspace(1, 0, 1 + L).

Band order (wavelet and laplacian only, ``band_order``): the low-pass band always comes first (strength 1).
``"coarse_to_fine"`` (default) then orders the detail bands from the coarsest level to the finest, so coarse
structure switches on before fine detail, which is the stated intent of SIG. ``"authors"`` keeps the order of the
authors' code, finest level first and coarsest last (docs/upstream_methods.md section 3.1, quirk 4). Within a level
the bands stay LH, HL, HH in both orders.

Gates (``gate``): start_i = (1 - w)(1 - strength_i) with w = overlap; component i ramps on over
[start_i, start_i + w]. w <= 1e-8 gives the hard step 1[alpha >= start_i]; otherwise p = clamp((alpha -
start_i)/w, 0, 1) and the gate is p ("linear"), 1/2 - cos(pi p)/2 ("cosine"), the rescaled logistic
(sigma(k(p - 1/2)) - sigma(-k/2)) / (sigma(k/2) - sigma(-k/2) + 1e-10) clamped to [0, 1] ("sigmoid"), or
1[p >= 1/2] ("step").
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

SPECTRAL_MODES = ("svd", "dct", "wavelet", "laplacian")
CHANNEL_MODES = ("per_channel", "joint")
GATINGS = ("linear", "cosine", "sigmoid", "step")
BAND_ORDERS = ("coarse_to_fine", "authors")
HARD_STEP_OVERLAP = 1e-8


# -- gates ------------------------------------------------------------------------------------------------
def gate(strength: torch.Tensor, alphas: torch.Tensor, overlap: float, gating: str = "linear",
         sigmoid_k: float = 12.0) -> torch.Tensor:
    """Gate values of every component at every alpha.

    ``strength`` [G, *comp] (G = images, or 1 when shared) and ``alphas`` [S] (or [B, S] per image) -> [G or B, S,
    *comp], computed in
    ``strength``'s dtype as the authors do (alpha is k/(N-1) rounded to that dtype).
    """
    dtype = strength.dtype
    rows = alphas.shape[0] if alphas.dim() == 2 else 1  # per-image alphas [B, S] (adaptive spacing)
    a = alphas.to(device=strength.device, dtype=dtype).view((rows, alphas.shape[-1]) + (1,) * (strength.dim() - 1))
    s = strength.unsqueeze(1)
    width = max(float(overlap), 0.0)
    start = (1.0 - width) * (1.0 - s)
    if width <= HARD_STEP_OVERLAP:
        return (a >= start).to(dtype)
    p = ((a - start) / width).clamp(0.0, 1.0)
    if gating == "linear":
        return p
    if gating == "cosine":
        return 0.5 - 0.5 * torch.cos(p * math.pi)
    if gating == "sigmoid":
        k = float(sigmoid_k)
        lo = torch.sigmoid(torch.tensor(-0.5 * k, device=s.device, dtype=dtype))
        hi = torch.sigmoid(torch.tensor(0.5 * k, device=s.device, dtype=dtype))
        return ((torch.sigmoid(k * (p - 0.5)) - lo) / (hi - lo + 1e-10)).clamp(0.0, 1.0)
    if gating == "step":
        return (p >= 0.5).to(dtype)
    raise ValueError(f"invalid gating={gating!r}: choose one of {list(GATINGS)}")


# -- decompositions ---------------------------------------------------------------------------------------
class Decomposition:
    """A batch of differences d [B,C,H,W] split into gated components.

    ``strength``: [B or 1, *comp] (1 when every image shares it). ``reconstruct(g)`` maps gates
    [B or 1, S, *comp] to sum_i g_i * component_i as [B, S, C, H, W].
    """

    kind = "?"
    strength: torch.Tensor
    shape: torch.Size

    def reconstruct(self, gates: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def num_components(self) -> int:
        return int(self.strength[0].numel())


class SVDPerChannel(Decomposition):
    kind = "svd_per_channel"

    def __init__(self, diff: torch.Tensor):
        self.shape = diff.shape
        self.U, self.s, self.Vh = torch.linalg.svd(diff, full_matrices=False)  # [B,C,H,K] [B,C,K] [B,C,K,W]
        self.strength = (self.s / self.s[..., :1].clamp_min(1e-10)).clamp(0.0, 1.0)  # [B,C,K]

    def reconstruct(self, gates):  # gates [B,S,C,K]
        sg = self.s.unsqueeze(1) * gates  # [B,S,C,K]
        return torch.matmul(self.U.unsqueeze(1) * sg.unsqueeze(-2), self.Vh.unsqueeze(1))


class SVDJoint(Decomposition):
    kind = "svd_joint"

    def __init__(self, diff: torch.Tensor):
        self.shape = diff.shape
        b, c, h, w = diff.shape
        self.U, self.s, self.Vh = torch.linalg.svd(diff.reshape(b, c * h, w), full_matrices=False)
        self.strength = (self.s / self.s[..., :1].clamp_min(1e-10)).clamp(0.0, 1.0)  # [B,K]

    def reconstruct(self, gates):  # gates [B,S,K]
        b, c, h, w = self.shape
        sg = self.s.unsqueeze(1) * gates  # [B,S,K]
        out = torch.matmul(self.U.unsqueeze(1) * sg.unsqueeze(-2), self.Vh.unsqueeze(1))  # [B,S,CH,W]
        return out.reshape(b, -1, c, h, w)


def dct_matrix(n: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Orthonormal DCT-II matrix M[k, j] = cos(pi/n (j + 1/2) k), row 0 scaled by sqrt(1/n), others sqrt(2/n).

    Built in float64 and rounded to ``dtype``: the authors build it in float32, whose cosines of arguments up
    to ~n*pi lose orthonormality (round trip error ~3e-5 relative at 256x256, ~1e-7 here).
    """
    j = torch.arange(n, device=device, dtype=torch.float64).unsqueeze(0)
    k = torch.arange(n, device=device, dtype=torch.float64).unsqueeze(1)
    m = torch.cos(math.pi / n * (j + 0.5) * k)
    m[0] *= math.sqrt(1.0 / n)
    if n > 1:
        m[1:] *= math.sqrt(2.0 / n)
    return m.to(dtype)


def dct_strength(h: int, w: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """1 - normalised radius over the (u, v) frequency grid: 1 at DC, 0 at the highest corner."""
    yy, xx = torch.meshgrid(torch.linspace(0.0, 1.0, h, device=device, dtype=dtype),
                            torch.linspace(0.0, 1.0, w, device=device, dtype=dtype), indexing="ij")
    r = torch.sqrt(xx.square() + yy.square())
    r = r / r.max().clamp_min(1e-10)
    return (1.0 - r).clamp(0.0, 1.0)


class DCT(Decomposition):
    kind = "dct"

    def __init__(self, diff: torch.Tensor):
        self.shape = diff.shape
        h, w = diff.shape[-2:]
        self.Mh = dct_matrix(h, diff.device, diff.dtype)
        self.Mw = dct_matrix(w, diff.device, diff.dtype)
        self.coeffs = self.Mh @ diff @ self.Mw.T  # [B,C,H,W]
        self.strength = dct_strength(h, w, diff.device, diff.dtype).unsqueeze(0)  # [1,H,W]

    def reconstruct(self, gates):  # gates [1,S,H,W]
        scaled = self.coeffs.unsqueeze(1) * gates.unsqueeze(2)  # [B,S,C,H,W]
        return self.Mh.T @ scaled @ self.Mw


class ComponentStack(Decomposition):
    """Explicit component images [B,J,C,H,W] with strengths linspace(1, 0, J) in stack order."""

    def __init__(self, kind: str, components: torch.Tensor):
        self.kind = kind
        self.components = components
        self.shape = torch.Size((components.shape[0],) + tuple(components.shape[2:]))
        j = components.shape[1]
        self.strength = torch.linspace(1.0, 0.0, j, device=components.device, dtype=components.dtype).unsqueeze(0)

    def reconstruct(self, gates):  # gates [1 or B,S,J]
        b, j = self.components.shape[:2]
        flat = self.components.reshape(b, j, -1)
        out = torch.matmul(gates.expand(b, -1, -1), flat)  # [B,S,C*H*W]
        return out.reshape(b, -1, *self.shape[1:])


def haar_forward(x: torch.Tensor):
    """One orthonormal 2-D Haar level on [...,H,W] (even sides) -> (LL, (LH, HL, HH)) at half size."""
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return (a + b + c + d) / 2.0, ((a - b + c - d) / 2.0, (a + b - c - d) / 2.0, (a - b - c + d) / 2.0)


def haar_inverse(ll, lh, hl, hh) -> torch.Tensor:
    out = ll.new_empty(ll.shape[:-2] + (2 * ll.shape[-2], 2 * ll.shape[-1]))
    out[..., 0::2, 0::2] = (ll + lh + hl + hh) / 2.0
    out[..., 0::2, 1::2] = (ll - lh + hl - hh) / 2.0
    out[..., 1::2, 0::2] = (ll + lh - hl - hh) / 2.0
    out[..., 1::2, 1::2] = (ll - lh - hl + hh) / 2.0
    return out


def _haar_synthesis(ll: torch.Tensor, n_levels: int, level: int | None = None, band=None,
                    detail: torch.Tensor | None = None) -> torch.Tensor:
    """Inverse Haar through ``n_levels`` levels with every detail band zero except (level, band) = detail."""
    cur = ll
    for lev in reversed(range(n_levels)):
        z = torch.zeros_like(cur)
        bands = [z, z, z]
        if lev == level:
            bands[band] = detail
        cur = haar_inverse(cur, *bands)
    return cur


def wavelet_components(diff: torch.Tensor, levels: int, band_order: str = "coarse_to_fine") -> torch.Tensor:
    """[B,J,C,H,W] Haar components: LL alone, then (level, band) details in ``band_order``."""
    ll = diff
    details: list[tuple] = []  # details[0] is the finest level
    for _ in range(levels):
        h, w = ll.shape[-2:]
        if min(h, w) < 2 or h % 2 or w % 2:
            break
        ll, det = haar_forward(ll)
        details.append(det)
    n = len(details)
    comps = [_haar_synthesis(ll, n)]
    level_order = range(n) if band_order == "authors" else reversed(range(n))
    zero_ll = torch.zeros_like(ll)
    for lev in level_order:
        for band in range(3):
            comps.append(_haar_synthesis(zero_ll, n, lev, band, details[lev][band]))
    return torch.stack(comps, dim=1)


def _upsample_to(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def laplacian_components(diff: torch.Tensor, levels: int, band_order: str = "coarse_to_fine") -> torch.Tensor:
    """[B,J,C,H,W] Laplacian-pyramid components: the low-pass band, then each residual, each upsampled
    level by level (bilinear, align_corners=False) to full size."""
    cur = diff
    residuals: list[torch.Tensor] = []  # residuals[0] is the finest
    while len(residuals) < levels and min(cur.shape[-2:]) >= 2:
        low = F.avg_pool2d(cur, kernel_size=2, stride=2)
        residuals.append(cur - _upsample_to(low, cur.shape[-2:]))
        cur = low
    sizes = [r.shape[-2:] for r in residuals]

    def up_from(t: torch.Tensor, level: int) -> torch.Tensor:  # t lives at the size of residual ``level``
        for lev in reversed(range(level)):
            t = _upsample_to(t, sizes[lev])
        return t

    comps = [up_from(cur, len(residuals))]
    level_order = range(len(residuals)) if band_order == "authors" else reversed(range(len(residuals)))
    for lev in level_order:
        comps.append(up_from(residuals[lev], lev))
    return torch.stack(comps, dim=1)


def decompose(diff: torch.Tensor, spectral_mode: str = "svd", channel_mode: str = "per_channel",
              wavelet_levels: int = 4, laplacian_levels: int = 4,
              band_order: str = "coarse_to_fine") -> Decomposition:
    """Decompose a batch of differences [B,C,H,W] (once per batch; reconstruct per chunk of alphas)."""
    if diff.dim() != 4:
        raise ValueError(f"diff must be [B,C,H,W]; got {tuple(diff.shape)}")
    if band_order not in BAND_ORDERS:
        raise ValueError(f"invalid band_order={band_order!r}: choose one of {list(BAND_ORDERS)}")
    if spectral_mode == "svd":
        if channel_mode == "per_channel":
            return SVDPerChannel(diff)
        if channel_mode == "joint":
            return SVDJoint(diff)
        raise ValueError(f"invalid channel_mode={channel_mode!r}: choose one of {list(CHANNEL_MODES)}")
    if spectral_mode == "dct":
        return DCT(diff)
    if spectral_mode == "wavelet":
        return ComponentStack("wavelet", wavelet_components(diff, wavelet_levels, band_order))
    if spectral_mode == "laplacian":
        return ComponentStack("laplacian", laplacian_components(diff, laplacian_levels, band_order))
    raise ValueError(f"invalid spectral_mode={spectral_mode!r}: choose one of {list(SPECTRAL_MODES)}")


def spectral_offsets(dec: Decomposition, alphas: torch.Tensor, overlap: float, gating: str = "linear",
                     sigmoid_k: float = 12.0) -> torch.Tensor:
    """R(state, alpha) for every alpha: [B, S, C, H, W] (add the baseline to get path points)."""
    return dec.reconstruct(gate(dec.strength, alphas, overlap, gating, sigmoid_k))


__all__ = [
    "BAND_ORDERS",
    "CHANNEL_MODES",
    "GATINGS",
    "SPECTRAL_MODES",
    "Decomposition",
    "dct_matrix",
    "dct_strength",
    "decompose",
    "gate",
    "haar_forward",
    "haar_inverse",
    "laplacian_components",
    "spectral_offsets",
    "wavelet_components",
]
