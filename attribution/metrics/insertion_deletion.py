"""Insertion and deletion games of RISE (Petsiuk, Das & Saenko, BMVC 2018, arXiv 1806.07421).

Reference implementation: ``eclique/RISE`` ``evaluation.py`` (``CausalMetric``, ``gkern``, ``auc``);
definitions in docs/metrics.md B.1.

- Pixel saliency s = sum_c |A_c| (a pixel is a spatial location; all channels move together), ranked by one
  stable descending sort per image (ties: lower flat pixel index first; RISE's ``flip(argsort)`` leaves tie order
  to numpy's quicksort).
- ``step`` pixels per step, n = ceil(H*W / step) steps, n + 1 curve points (i = 0 .. n).
- **Deletion**: start from x; point i has the i*step most salient pixels replaced by the deletion substrate
  (default ``"zero"``: 0 in the classifier's input space, i.e. the dataset-mean colour for a normalised input).
- **Insertion**: start from the insertion substrate (default ``"blur"``: RISE's ``gkern(11, 5)`` - scipy's
  ``gaussian_filter`` of an 11x11 delta, sigma 5 - applied per channel by ``conv2d`` with zero padding 5, in the
  input space); point i has the i*step most salient pixels copied from x.
- Score: softmax probability of ``target`` (RISE uses the class predicted on the clean image: pass the
  prediction as ``target`` to reproduce it exactly).
- AUC = (sum(curve) - curve[0]/2 - curve[-1]/2) / n, the trapezoid rule on an x axis scaled to [0, 1].
  Higher insertion, lower deletion is better.

Returns per image: ``rise_insertion``, ``rise_deletion`` (AUCs) [B] and ``rise_insertion_curve``,
``rise_deletion_curve`` [B, n + 1]. (Prefixed with ``rise_`` so that they never collide with DiffID's keys.)

Batched: all 2 (n + 1) perturbed images of every image of the batch are generated chunk by chunk on the device and
evaluated in no-grad forwards of at most ``max_batch`` rows.
"""
from __future__ import annotations

import torch

from ..engine.blur import delta_gaussian_blur, delta_gaussian_kernel
from ..engine.chunking import check_autocast
from ..errors import check_choice, check_int
from ._forward import descending_ranks, runs, score_rows
from .base import Metric, register_metric

SUBSTRATES = ("blur", "zero", "black")


def rise_kernel(klen: int = 11, nsig: float = 5.0) -> torch.Tensor:
    """RISE's ``gkern``: :func:`attribution.engine.blur.delta_gaussian_kernel` (klen x klen, sigma ``nsig``)."""
    return delta_gaussian_kernel(klen, nsig)


def rise_blur(x: torch.Tensor, klen: int = 11, nsig: float = 5.0) -> torch.Tensor:
    """RISE's insertion canvas: per-channel conv2d with :func:`rise_kernel`, zero padding klen // 2."""
    return delta_gaussian_blur(x, klen, nsig)


def rise_auc(curve: torch.Tensor) -> torch.Tensor:
    """RISE's ``auc``: trapezoid rule with the x axis scaled to [0, 1], per row of [B, K]."""
    k = curve.shape[-1]
    return (curve.sum(-1) - curve[..., 0] / 2 - curve[..., -1] / 2) / (k - 1)


@register_metric("insertion_deletion", columns=(("rise_insertion", "Ins", "max"), ("rise_deletion", "Del", "min")))
class InsertionDeletion(Metric):
    """RISE insertion / deletion AUCs and curves (see the module docstring).

    Options:
        step: pixels changed per step; None (default) = the image width, i.e. one row's worth (RISE's 224 at
            224 x 224; the RISE notebook also uses 224 * 8 for speed).
        insertion_substrate: "blur" (default, RISE) | "zero" (0 in input space) | "black" (normalise(0)).
        deletion_substrate: "zero" (default, RISE) | "blur" | "black".
        mean, std: the classifier's normalisation (needed only for "black").
        max_batch: rows per forward (None: 128 on CUDA; on the CPU 32, 8 at 224-256 px).
        autocast: False (float32, default) | "bf16" | "fp16" for the forwards.

    Cost per image: 2 * (ceil(H*W / step) + 1) forwards.
    """

    name = "insertion_deletion"
    nan_means_bad_output = True

    def __init__(self, step: int | None = None, insertion_substrate: str = "blur",
                 deletion_substrate: str = "zero", mean=None, std=None, max_batch: int | None = None,
                 autocast=False):
        super().__init__(mean, std, max_batch)
        check_int("step", step, 1, allow_none=True)
        self.step = step
        self.insertion_substrate = check_choice("insertion_substrate", insertion_substrate, SUBSTRATES)
        self.deletion_substrate = check_choice("deletion_substrate", deletion_substrate, SUBSTRATES)
        self.autocast = check_autocast(autocast)

    def n_steps(self, height: int, width: int) -> int:
        step = self.step or width
        return (height * width + step - 1) // step

    def cost(self, height: int = 256, width: int = 256) -> dict:
        return {"f": 2 * (self.n_steps(height, width) + 1)}

    def _substrate(self, x: torch.Tensor, kind: str) -> torch.Tensor:
        if kind == "blur":
            return rise_blur(x)
        if kind == "zero":
            return torch.zeros_like(x)
        return self.norm.normalize(torch.zeros_like(x))

    def compute(self, model, x, attr, target):
        b, c, h, w = x.shape
        hw = h * w
        step = self.step or w
        n = self.n_steps(h, w)
        points = n + 1
        per_image = 2 * points
        sal = attr.abs().sum(1).reshape(b, hw) if attr.dim() == 4 else attr.abs().reshape(b, hw)
        ranks = descending_ranks(sal).to(torch.int32)  # [B, HW]
        flat = x.reshape(b, c, hw)
        ins_base = self._substrate(x, self.insertion_substrate).reshape(b, c, hw)
        del_fill = self._substrate(x, self.deletion_substrate).reshape(b, c, hw)

        def make_rows(start: int, stop: int) -> torch.Tensor:
            pieces = []
            for run, lo, hi in runs(start, stop, points):  # run = 2 * image + direction (0 insertion, 1 deletion)
                img, deletion = divmod(run, 2)
                moved = torch.arange(lo, hi, device=x.device, dtype=torch.int32) * step
                done = (ranks[img] < moved.unsqueeze(1)).unsqueeze(1)  # [m, 1, HW]: pixels already moved
                if deletion:
                    pieces.append(torch.where(done, del_fill[img], flat[img]))
                else:
                    pieces.append(torch.where(done, flat[img], ins_base[img]))
            return torch.cat(pieces).view(-1, c, h, w)

        probs, _ = score_rows(model, b * per_image, make_rows, target.repeat_interleave(per_image),
                              self.chunker, x.device, self.autocast, row_shape=x.shape[1:])
        curves = probs.view(b, 2, points)
        ins_curve, del_curve = curves[:, 0], curves[:, 1]
        return {"rise_insertion": rise_auc(ins_curve), "rise_deletion": rise_auc(del_curve),
                "rise_insertion_curve": ins_curve, "rise_deletion_curve": del_curve}


__all__ = ["InsertionDeletion", "rise_auc", "rise_blur", "rise_kernel"]
