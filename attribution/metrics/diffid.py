"""DiffID: the MA-GIG / SIG authors' insertion-deletion protocol (``cleanig/metric/diffid.py``).

Definition (docs/upstream_methods.md section 5.1, docs/metrics.md B.3). For an image x in the classifier's input
space with C x H x W = D elements, attribution A and label y, and each ratio r in R = {0.1, 0.2, ..., 0.9}:

- k = int(D * r) (a Python float product, e.g. [19660, 39321, ...] at 3 x 256 x 256);
- importance = |A| over all D *elements* (channels ranked independently, no channel aggregation), one stable
  descending sort per image: rank 0 = largest |A|, ties ordered by flat index (lower index = more important);
- **deletion**: replace the k most important elements (ranks 0 .. k-1);
- **insertion** (the authors' name): replace the k *least* important elements (ranks D-k .. D-1), i.e. keep the
  most important ones. With ties this removes, among equal |A|, the higher flat indices first (one sort serves
  both directions; the authors' ascending argsort would remove the lower ones first on ties - CUDA's unstable
  argsort leaves their order undefined anyway);
- fill of the replaced elements (``fill``):
  ``"mean"`` (default, used for the published numbers): one scalar per perturbed image, the mean of the *kept*
  elements over all channels in the normalised input space, sum / (count + 1e-8);
  ``"zero"``: 0 in the normalised space (the dataset-mean colour);
  ``"blur"``: the Gaussian blur (kernel 11, sigma 5, reflect padding) of the normalised image, elementwise (SIG);
  ``"avgpool"``: ``avg_pool2d(kernel 11, stride 1, padding 5)`` of the normalised image, elementwise (MA-GIG);
- score of a perturbed image x~ (``score``): ``"hard"`` (default, published) = 1[argmax f(x~) == y];
  ``"soft"`` = clamp(p_y(x~) / (p_y(x) + 1e-8), 0, 1) per image (the confidence-retention score, SIG's clamp);
- Ins(r), Del(r) per image; ``insertion`` = mean_r Ins(r), ``deletion`` = mean_r Del(r),
  ``diffid`` = mean_r [Ins(r) - Del(r)] (plain means over the ratios: no trapezoid, no 0/1 end points).
  Higher DiffID and insertion are better, lower deletion is better.

Returns per image: ``insertion``, ``deletion``, ``diffid`` [B] and ``insertion_curve``, ``deletion_curve``
[B, len(ratios)]. The means over images equal the authors' ``insertion_auc``, ``deletion_auc`` and ``diffid``.

Batched: the 2 x len(ratios) perturbed images of every image of the batch are built chunk by chunk on the device
and evaluated in no-grad forwards of at most ``max_batch`` rows (plus one clean forward per image for "soft").
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..engine.chunking import check_autocast
from ..engine.normalize import gaussian_blur
from ..errors import ConfigError, check_choice
from ._forward import descending_ranks, runs, score_rows
from .base import Metric, register_metric

FILLS = ("mean", "zero", "blur", "avgpool")
SCORES = ("hard", "soft")
DEFAULT_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@register_metric("diffid", columns=(("diffid", "DiffID", "max"), ("insertion", "Ins", "max"),
                                     ("deletion", "Del", "min")), levels=DEFAULT_RATIOS)
class DiffID(Metric):
    """DiffID, insertion and deletion of the MA-GIG / SIG benchmark (see the module docstring).

    Options:
        ratios: fractions of the C*H*W elements replaced, default (0.1, ..., 0.9); each in (0, 1).
        fill: "mean" (default) | "zero" | "blur" | "avgpool" - value written into the replaced elements.
        score: "hard" (default; top-1 accuracy against ``target``) | "soft" (confidence retention).
        mean, std: the classifier's normalisation (accepted for uniformity; the protocol works in the normalised
            space and does not need them).
        max_batch: rows per forward (None: 128 on CUDA; on the CPU 32, 8 at 224-256 px).
        autocast: False (float32, default) | "bf16" | "fp16" for the forwards (speed; may flip borderline
            top-1 decisions).

    ``target`` must be the ground-truth label to reproduce the papers (they score accuracy against the label).
    Cost per image: 2 * len(ratios) forwards (+1 for "soft").
    """

    name = "diffid"
    nan_means_bad_output = True

    def __init__(self, ratios: Sequence[float] = DEFAULT_RATIOS, fill: str = "mean", score: str = "hard",
                 mean=None, std=None, max_batch: int | None = None, autocast=False):
        super().__init__(mean, std, max_batch)
        try:
            ratios = tuple(float(r) for r in ratios)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"invalid ratios={ratios!r}: a list of floats in (0, 1)") from e
        if not ratios or any(not (0.0 < r < 1.0) for r in ratios):
            raise ConfigError(f"invalid ratios={ratios!r}: a non-empty list of floats in (0, 1)")
        self.ratios = ratios
        self.fill = check_choice("fill", fill, FILLS)
        self.score = check_choice("score", score, SCORES)
        self.autocast = check_autocast(autocast)

    def cost(self, height: int = 256, width: int = 256) -> dict:
        """Forward-only rows per image."""
        return {"f": 2 * len(self.ratios) + (self.score == "soft")}

    def counts(self, n_elements: int):
        """k = int(D * r) per ratio, with Python floats as the authors compute it."""
        return [int(n_elements * r) for r in self.ratios]

    def _fill_source(self, x: torch.Tensor) -> torch.Tensor | None:
        if self.fill == "blur":
            return gaussian_blur(x, 5.0, ksize=11)
        if self.fill == "avgpool":
            return F.avg_pool2d(x, kernel_size=11, stride=1, padding=5)
        return None

    def compute(self, model, x, attr, target):
        if attr.shape != x.shape:
            raise ConfigError(f"diffid ranks C x H x W elements: attr {tuple(attr.shape)} must match x "
                              f"{tuple(x.shape)}")
        b, c, h, w = x.shape
        d = c * h * w
        n_r = len(self.ratios)
        per_image = 2 * n_r
        ks = torch.tensor(self.counts(d), device=x.device, dtype=torch.int32)
        ranks = descending_ranks(attr.abs().reshape(b, d)).to(torch.int32)  # [B, D]; int32 halves the chunk memory
        flat = x.reshape(b, d)
        source = self._fill_source(x)
        source = None if source is None else source.reshape(b, d)
        if self.fill == "mean":
            # sum of the kept elements from prefix sums in rank order (float64): deletion keeps ranks >= k,
            # insertion keeps ranks < D - k; fill = sum / (count + 1e-8) as the authors compute it
            in_order = torch.empty_like(flat).scatter_(1, ranks.long(), flat).double()
            prefix = torch.cat([torch.zeros(b, 1, dtype=torch.float64, device=x.device), in_order.cumsum(1)], 1)

        def make_rows(start: int, stop: int) -> torch.Tensor:
            pieces = []
            for run, lo, hi in runs(start, stop, n_r):  # run = 2 * image + direction (0 insertion, 1 deletion)
                img, deletion = divmod(run, 2)
                k = ks[lo:hi]
                # deletion replaces ranks < k; insertion replaces ranks >= D - k
                if deletion:
                    replace = ranks[img] < k.unsqueeze(1)
                else:
                    replace = ranks[img] >= (d - k).unsqueeze(1)
                if self.fill == "mean":
                    kept = prefix[img, d] - prefix[img, k.long()] if deletion else prefix[img, (d - k).long()]
                    fill = (kept / ((d - k).double() + 1e-8)).to(flat.dtype).unsqueeze(1)
                elif self.fill == "zero":
                    fill = torch.zeros((), dtype=flat.dtype, device=flat.device)
                else:
                    fill = source[img]
                pieces.append(torch.where(replace, fill, flat[img]))
            return torch.cat(pieces).view(-1, c, h, w)

        row_target = target.repeat_interleave(per_image)
        probs, correct = score_rows(model, b * per_image, make_rows, row_target, self.chunker, x.device,
                                    self.autocast, row_shape=x.shape[1:])
        if self.score == "hard":
            vals = correct.float()
        else:
            p_clean, _ = score_rows(model, b, lambda s, e: x[s:e], target, self.chunker, x.device, self.autocast,
                                     row_shape=x.shape[1:])
            vals = (probs.view(b, per_image) / (p_clean.unsqueeze(1) + 1e-8)).clamp(0.0, 1.0).flatten()
        vals = vals.view(b, 2, n_r)
        ins_curve, del_curve = vals[:, 0], vals[:, 1]
        ins, dele = ins_curve.mean(1), del_curve.mean(1)
        return {"insertion": ins, "deletion": dele, "diffid": (ins_curve - del_curve).mean(1),
                "insertion_curve": ins_curve, "deletion_curve": del_curve}
