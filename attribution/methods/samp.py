"""SAMP — Salient Manipulation Path (Zhang et al., "Path Choice Matters for Clear Attributions in Path
Methods", ICLR 2024), as the SIG authors run it (``cleanig/explainer/samp.py``; docs/upstream_methods.md §2.10),
batched over lines x images.

Two "lines" (``direction``: "both" = deletion then insertion, or one of them):

- **deletion**: from x toward the black image normalise(0);
- **insertion**: from blur(x) toward x (``insertion_baseline="blur"``; "black" starts at normalise(0)).
  blur = ``conv2d`` in the *normalised* space with zero padding and a ``klen`` x ``klen`` kernel made by
  ``scipy.ndimage.gaussian_filter`` (sigma ``ksig``, default 'reflect' mode) of a centred delta.

Each line moves pixels greedily. Per iteration, for every image still moving (one forward+backward)::

    g = grad f_y(cur);  proj[h,w] = sum_c g * (end - cur);  q = step_size / (H*W)
    deletion:  proj[finished] = +inf;  S = proj <  quantile_lower(proj, q)      + 1e-6   (most negative)
    insertion: proj[finished] = -inf;  S = proj >  quantile_higher(proj, 1 - q) - 1e-6   (most positive)
    move = (end - cur) on S (all channels), scaled down to L1 = ||start - end||_1 / n_frag if larger
    cur += move;  cam += sum_c move * g

A pixel is finished when all its channels are ``isclose`` (rtol 1e-5, atol 1e-8) to the end; an image's
line stops when every pixel is finished. The deletion cam is negated; with ``reduction="norm"`` each line's
cam is min-max normalised; the lines are summed and the per-pixel map is broadcast to all channels.
``momentum`` m smooths the gradient (g <- m g + (1-m) g_prev) as upstream's ``momen`` (null in the paper).

By construction each line is a Riemann sum along its own path: sum(cam_line) ~= f(end) - f(start)
(before the deletion negation). ``extras`` reports, per line L in {deletion, insertion} and per image:
``L_iterations``, ``L_finished`` (reached the end), ``L_stalled`` (stopped because no pixel could be
selected, e.g. NaN gradients; upstream would loop forever), ``L_sum`` (sum of the un-negated line cam),
``L_f_start``/``L_f_end`` (f at the line's first and last point), ``L_completeness``
(|L_sum - (f_end - f_start)| / |f_end - f_start|) and ``L_end_gap`` (max |last point - end|).

Deviations (options): ``max_iter`` caps the iterations of each line (None = no cap, upstream);
``step_size`` larger than H*W selects every unfinished pixel (upstream's ``torch.quantile`` would raise).

Cost per image and line: at most ``ceil(H*W/step_size) + n_frag + 1`` forward+backward rows (each
unscaled iteration finishes at least ``step_size`` pixels; each scaled one removes 1/n_frag of the L1
distance), capped by ``max_iter``; at least about ``n_frag``. Plus one forward-only row per line for
f at its last point. Upstream at 256x256: up to ~13,100 iterations per line.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..engine.blur import delta_gaussian_kernel
from ..engine.quantile import row_quantile
from ..errors import check, check_choice, check_int, check_real
from .base import Attribution, AttributionMethod, register_method

DIRECTIONS = {"both": ("deletion", "insertion"), "deletion": ("deletion",), "insertion": ("insertion",)}
REDUCTIONS = ("sum", "norm")
INSERTION_BASELINES = ("blur", "black")


def samp_kernel(channels: int, klen: int, ksig: float) -> torch.Tensor:
    """Upstream ``_gkern``: [C,C,klen,klen] float32 with :func:`delta_gaussian_kernel` on the diagonal."""
    k = delta_gaussian_kernel(klen, ksig)
    kern = torch.zeros(channels, channels, klen, klen)
    for i in range(channels):
        kern[i, i] = k
    return kern


def samp_blur(img: torch.Tensor, klen: int = 11, ksig: float = 5) -> torch.Tensor:
    """Upstream ``_gaussian_blur``: conv2d with zero padding, in whatever space ``img`` lives (normalised)."""
    kern = samp_kernel(img.shape[1], klen, ksig).to(device=img.device, dtype=img.dtype)
    return F.conv2d(img, kern, padding=klen // 2)


def _unfinished(cur: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """[N,H,W]: pixels with any channel not isclose to the end (upstream's ``selected_mask``)."""
    return torch.any(~torch.isclose(cur, end), dim=1)


@register_method("samp", display="SAMP", order=8)
class SAMP(AttributionMethod):
    """SAMP (see the module docstring)."""

    name = "samp"
    is_path = False

    def __init__(self, step_size: int = 5, n_frag: float = 5, klen: int = 11, ksig: float = 5,
                 momentum: float | None = None, direction: str = "both", reduction: str = "sum",
                 insertion_baseline: str = "blur", max_iter: int | None = None, **kwargs):
        if isinstance(step_size, float) and step_size.is_integer():
            step_size = int(step_size)
        self.step_size = check_int("step_size", step_size, 1, allowed="an integer >= 1 (pixels per iteration)")
        check_real("n_frag", n_frag, 0, low_open=True, allowed="a number > 0")
        self.n_frag = n_frag
        check(check_int("klen", klen, 1, allowed="an odd integer >= 1") % 2 == 1, "klen", klen, "an odd integer >= 1")
        self.klen = klen
        check_real("ksig", ksig, 0, low_open=True, allowed="a number > 0")
        self.ksig = ksig
        check_real("momentum", momentum, 0, 1, low_open=True, allow_none=True, allowed="None or a number in (0, 1]")
        self.momentum = momentum
        self.direction = check_choice("direction", direction, DIRECTIONS)
        self.lines = DIRECTIONS[direction]
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)
        self.insertion_baseline = check_choice("insertion_baseline", insertion_baseline, INSERTION_BASELINES)
        self.max_iter = check_int("max_iter", max_iter, 1, allow_none=True, allowed="None (no cap) or an integer >= 1")
        super().__init__(**kwargs)

    # -- pieces --------------------------------------------------------------------------------------
    def reference_point(self, x: torch.Tensor, line: str) -> torch.Tensor:
        """The line's baseline: black for deletion, blur(x) (or black) for insertion."""
        if line == "insertion" and self.insertion_baseline == "blur":
            return samp_blur(x, self.klen, self.ksig)
        return self.norm.normalize(torch.zeros_like(x))

    def iteration_bound(self, height: int, width: int) -> int:
        """Most iterations one line can take (see the module docstring), after the ``max_iter`` cap."""
        bound = math.ceil(height * width / self.step_size) + math.ceil(self.n_frag) + 1
        return bound if self.max_iter is None else min(bound, self.max_iter)

    def _select(self, proj, unfinished, inverse, q):
        """Upstream's per-row quantile selection; deletion rows (inverse) and insertion rows separately."""
        upd = torch.zeros_like(unfinished)
        for is_inv in (True, False):
            rows = (inverse == is_inv).nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            p = proj.index_select(0, rows).clone()
            sel = unfinished.index_select(0, rows)
            flat = p.view(rows.numel(), -1)
            if is_inv:
                p[~sel] = float("inf")
                thr = row_quantile(flat, q, "lower") + 1e-6
                upd[rows] = p < thr[:, :, None]
            else:
                p[~sel] = float("-inf")
                thr = row_quantile(flat, 1 - q, "higher") - 1e-6
                upd[rows] = p > thr[:, :, None]
        return upd

    # -- main ----------------------------------------------------------------------------------------
    def _attribute(self, model, x, target):
        b, c, h, w = x.shape
        ev = self.evaluator
        starts, ends = [], []
        for line in self.lines:
            ref = self.reference_point(x, line)
            starts.append(x.clone() if line == "deletion" else ref)
            ends.append(ref if line == "deletion" else x.clone())
        n_lines = len(self.lines)
        cur = torch.cat(starts)  # row = line * B + image
        end = torch.cat(ends)
        inverse = torch.tensor([ln == "deletion" for ln in self.lines], device=x.device).repeat_interleave(b)
        tgt = target.repeat(n_lines)
        rows_total = n_lines * b
        step_bound = (cur - end).abs().view(rows_total, -1).sum(-1) / self.n_frag
        cam = torch.zeros(rows_total, h, w, device=x.device)
        iters = torch.zeros(rows_total, dtype=torch.long, device=x.device)
        stalled = torch.zeros(rows_total, dtype=torch.bool, device=x.device)
        f_start = torch.full((rows_total,), float("nan"), device=x.device)
        grads_buf = None
        q = min(1.0, self.step_size / (h * w))
        unfinished = _unfinished(cur, end)
        it = 0
        while True:
            active = unfinished.view(rows_total, -1).any(-1) & ~stalled
            if not bool(active.any()) or (self.max_iter is not None and it >= self.max_iter):
                break
            idx = active.nonzero().squeeze(1)
            sub = cur.index_select(0, idx)
            g, score = ev.grad(model, sub, tgt.index_select(0, idx))
            first = iters.index_select(0, idx) == 0
            f_start[idx[first]] = score[first]
            if self.momentum is not None:
                if grads_buf is None:
                    grads_buf = torch.empty_like(cur)
                    grads_buf[idx] = g
                else:
                    grads_buf[idx] = self.momentum * g + (1 - self.momentum) * grads_buf[idx]
                g = grads_buf[idx]
            with torch.no_grad():
                delta = end.index_select(0, idx) - sub
                proj = torch.sum(g * delta, dim=1)
                upd = self._select(proj, unfinished.index_select(0, idx), inverse.index_select(0, idx), q)
                none = ~upd.view(idx.numel(), -1).any(-1)
                if bool(none.any()):  # nothing selectable (NaN gradients): stop these rows instead of spinning
                    stalled[idx[none]] = True
                upd = upd.unsqueeze(1).expand(-1, c, -1, -1)
                move = delta * upd
                move_l1 = move.abs().view(idx.numel(), -1).sum(-1)
                bound = step_bound.index_select(0, idx)
                out = move_l1 > bound
                ratio = bound / (move_l1 + 1e-8)
                move = torch.where(out[:, None, None, None], move * ratio[:, None, None, None], move)
                new = sub + move
                cur.index_copy_(0, idx, new)
                cam.index_copy_(0, idx, cam.index_select(0, idx) + torch.sum(move * g, dim=1))
                iters[idx] += 1
                unfinished.index_copy_(0, idx, _unfinished(new, end.index_select(0, idx)))
            it += 1
        f_end = ev.score(model, cur, tgt)
        f_start = torch.where(torch.isnan(f_start), f_end, f_start)
        finished = ~unfinished.view(rows_total, -1).any(-1)
        gap = (cur - end).abs().view(rows_total, -1).max(-1).values

        extras, cams = {}, []
        for i, line in enumerate(self.lines):
            sl = slice(i * b, (i + 1) * b)
            raw = cam[sl]
            total = raw.flatten(1).double().sum(1)
            dfx = (f_end[sl] - f_start[sl]).double()
            extras.update({
                f"{line}_iterations": iters[sl], f"{line}_finished": finished[sl], f"{line}_stalled": stalled[sl],
                f"{line}_sum": total.float(), f"{line}_f_start": f_start[sl], f"{line}_f_end": f_end[sl],
                f"{line}_completeness": ((total - dfx).abs() / dfx.abs().clamp_min(1e-12)).float(),
                f"{line}_end_gap": gap[sl],
            })
            line_cam = -raw if line == "deletion" else raw
            if self.reduction == "norm":
                flat = line_cam.reshape(b, h * w)
                mx = flat.max(dim=-1, keepdim=True)[0]
                mn = flat.min(dim=-1, keepdim=True)[0]
                line_cam = ((flat - mn) / (mx - mn + 1e-8)).view(b, h, w)
            cams.append(line_cam)
        combined = torch.stack(cams).sum(dim=0)
        attr = combined.unsqueeze(1).expand(-1, c, -1, -1).contiguous()
        return Attribution(attr, extras=extras)

    def cost(self, height: int = 256, width: int = 256):
        """Upper bound per image: forward+backward rows over all lines, plus one forward per line."""
        n = len(self.lines)
        return {"fb": n * self.iteration_bound(height, width), "f": n}

    def __repr__(self):
        return (f"SAMP(step_size={self.step_size}, n_frag={self.n_frag}, klen={self.klen}, ksig={self.ksig}, "
                f"momentum={self.momentum}, direction={self.direction!r}, reduction={self.reduction!r}, "
                f"insertion_baseline={self.insertion_baseline!r}, max_iter={self.max_iter})")
