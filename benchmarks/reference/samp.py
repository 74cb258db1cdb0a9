"""SAMP as the SIG authors run it (``SAMPExplainer._generate_cam``; docs/upstream_methods.md section 2.10), one
image at a time (upstream batches the images of a line; the sums are per image, so batch 1 is the same algorithm)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .core import black


class SAMPRun(NamedTuple):
    attr: torch.Tensor  # [C,H,W]: one per-pixel map broadcast to the channels
    iterations: list[int]  # per line


def gkern(channels: int, klen: int = 11, ksig: float = 5) -> torch.Tensor:
    """``_gkern``: scipy ``gaussian_filter`` (sigma ksig, default 'reflect' mode, so mass 1 inside the window) of a
    centred delta, on the diagonal of a [C,C,klen,klen] kernel (no channel mixing)."""
    from scipy.ndimage import gaussian_filter  # upstream imports it from the deprecated scipy.ndimage.filters

    inp = np.zeros((klen, klen))
    inp[klen // 2, klen // 2] = 1
    k = gaussian_filter(inp, ksig)
    kern = np.zeros((channels, channels, klen, klen))
    for i in range(channels):
        kern[i, i] = k
    return torch.from_numpy(kern.astype("float32"))


def insertion_start(img: torch.Tensor, klen: int = 11, ksig: float = 5) -> torch.Tensor:
    """``_gaussian_blur``: conv2d in the *normalised* space with zero padding (the corners darken). img [1,C,H,W]."""
    kern = gkern(img.shape[1], klen, ksig).to(device=img.device, dtype=img.dtype)
    return F.conv2d(img, kern, padding=klen // 2)


def samp_line(model, img: torch.Tensor, label: int, ref: torch.Tensor, line: str, step: int = 5, n_frag: int = 5,
              objective: str = "prob", momen: float | None = None) -> tuple[torch.Tensor, int]:
    """One line of one image [1,C,H,W] -> (cam [1,H,W], iterations). deletion: x -> ``ref``; insertion: ``ref`` -> x."""
    inverse = line == "deletion"
    _, c, h, w = img.shape
    cur = img.clone() if inverse else ref.clone()
    end = ref if inverse else img.clone()
    # no single move may exceed 1/n_frag of the line's L1 length
    step_bound = (cur - end).abs().view(1, -1).sum(-1) / n_frag
    cam = torch.zeros(1, h, w, dtype=img.dtype, device=img.device)
    grads = None
    n_iter = 0
    # a pixel is finished when all its channels are isclose (rtol 1e-5, atol 1e-8) to the end
    sel = torch.any(~torch.isclose(cur, end), dim=1)
    while torch.any(sel):
        # one forward+backward per iteration
        p = cur.clone().requires_grad_(True)
        out = model(p)
        sc = torch.softmax(out, -1)[:, label] if objective == "prob" else out[:, label]
        (g,) = torch.autograd.grad(sc.sum(), p)
        # momentum smooths the gradient (null in the paper's config)
        grads = momen * g + (1 - momen) * grads if (grads is not None and momen is not None) else g
        with torch.no_grad():
            delta = end - cur
            # the projection of the gradient on the remaining move, per pixel (summed over the channels)
            proj = torch.sum(grads * delta, dim=1)
            q = step / (h * w)
            # select about ``step`` pixels: the most negative projections for deletion, the most positive for
            # insertion, finished pixels excluded by +-inf; the +-1e-6 slack selects many pixels at once when the
            # prob gradients are tiny, which shortens the line
            if inverse:
                proj[~sel] = float("inf")
                thr = torch.quantile(proj.view(1, -1), q=q, dim=-1, interpolation="lower", keepdim=True) + 1e-6
                upd = proj < thr[:, :, None]
            else:
                proj[~sel] = float("-inf")
                thr = torch.quantile(proj.view(1, -1), q=1 - q, dim=-1, interpolation="higher", keepdim=True) - 1e-6
                upd = proj > thr[:, :, None]
            # the selected pixels (all channels) move fully to the end, the whole move scaled down to the bound
            move = delta * upd.unsqueeze(1).expand(-1, c, -1, -1)
            l1 = move.abs().view(1, -1).sum(-1)
            if l1 > step_bound:
                move *= (step_bound / (l1 + 1e-8))[:, None, None, None]
            cur = cur + move
            # a Riemann sum along the line: cam += sum_c move * g
            cam += torch.sum(move * grads, dim=1)
            sel = torch.any(~torch.isclose(cur, end), dim=1)
        n_iter += 1
    # the deletion cam is negated
    return (-cam if inverse else cam), n_iter


def authors_samp(model, x: torch.Tensor, target, lines: Sequence[str] = ("deletion", "insertion"), step: int = 5,
                 n_frag: int = 5, objective: str = "prob", momen: float | None = None, klen: int = 11,
                 ksig: float = 5, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> SAMPRun:
    """SAMP of one normalised image [C,H,W]: the deletion line runs from x to black = preprocess(0), the insertion
    line from the blurred x to x; their cams are summed (reduction 'sum', no normalisation) and the per-pixel map is
    broadcast to all channels."""
    img = x[None]
    cams, its = [], []
    for line in lines:
        ref = black(img, mean, std) if line == "deletion" else insertion_start(img, klen, ksig)
        cam, n = samp_line(model, img, int(target), ref, line, step, n_frag, objective, momen)
        cams.append(cam)
        its.append(n)
    attr = torch.stack(cams).sum(0).expand(x.shape[0], -1, -1)
    return SAMPRun(attr, its)
