"""Performance Information Curves: AIC and SIC (Kapishnikov et al., XRAI, ICCV 2019, arXiv 1906.02825).

Semantics are those of PAIR saliency's ``saliency/metrics/pic.py`` (``compute_pic_metric``,
``aggregate_individual_pic_results``; docs/metrics.md B.2), computed on the same uint8 images:

1. x (the classifier's normalised input) is mapped to uint8 pixels: round(clip(x * std + mean, 0, 1) * 255);
   the model sees uint8 images converted back: normalise(u8 / 255) (PAIR's ``pred_func`` contract).
2. Saliency map [H, W] from the attribution (``saliency``): ``"abs_sum"`` = |sum_c A| (default, as PAIR's
   notebook), ``"sum_abs"`` = sum_c |A|, ``"sum"`` = sum_c A.
3. Random seed mask: ``int(H*W*random_mask_fraction)`` pixels (default 1%) drawn without replacement, one mask per
   image, *the same for every method*: it is derived from ``seed`` and the image (its id when the caller passes
   ``ids=``, otherwise a SHA-256 of its uint8 pixels), never from the method. The runner should pass the same
   ``seed`` for all methods (and may pass ``ids``). Explicit masks can be given with ``masks=``.
4. Blurred image: keep the masked pixels (the 4 corners always), fill the others by linear interpolation
   (``scipy.interpolate.griddata(method='linear')``, fill value = the image's mean colour), round to uint8.
   Implemented with one Delaunay triangulation per mask for all channels, bit-identical to PAIR's per-channel
   ``griddata`` calls.
5. Information = byte length of the lossless WebP encoding (``quality=100``).
6. For each threshold t (default PAIR's ``[0.005, ..., 0.75]``): mask = saliency >= quantile(saliency, 1 - t)
   OR the seed mask -> blurred image -> information H_t and prediction p_t.
7. Normalisation x_t = clip((H_t - H_blur)/(H_orig - H_blur), 0, 1), y_t = clip((p_t - p_blur)/(p_orig - p_blur),
   0, 1), y replaced by its running maximum when ``keep_monotonous`` (paper setting); points (0,0) and (1,1)
   added; linear ``interp1d`` sampled at ``num_data_points`` points of [0, 1) plus 1.0; per-image AUC by the
   trapezoid rule.
8. Skip rules, in PAIR's order, per image and per curve (the image gets NaN and a code in ``*_skip``):
   1 = p_orig < ``min_pred_value``; 2 = WebP size of the fully blurred image >= the original's;
   3 = p_blur >= p_orig. 0 = kept. (See :data:`PIC_SKIP_REASONS`.)
9. SIC: p = softmax probability of ``target``; AIC: p = 1[argmax == target]. Both come from the same forwards.

Returns per image: ``sic``, ``aic`` [B] (NaN when skipped), ``sic_skip``, ``aic_skip`` [B] int64 codes and
``sic_curve``, ``aic_curve`` [B, num_data_points + 1] (NaN rows when skipped). The paper's number is the AUC of
the point-wise *median* curve over images: :func:`aggregate_pic` (``method="median"`` or ``"mean"``).

Speed: all model evaluations are batched on the device (one pass for originals and blurred starts, one for all
threshold images); the CPU-bound parts (interpolation, WebP) run in a thread pool over images (``workers``; both
release the GIL in scipy's Qhull and Pillow's encoder).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..engine.chunking import check_autocast
from ..errors import ConfigError, check_choice, check_int, check_real
from ._forward import score_rows
from .base import Metric, register_metric

DEFAULT_THRESHOLDS = (0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.07, 0.10, 0.13, 0.21, 0.34, 0.5, 0.75)
SALIENCY_REDUCTIONS = ("abs_sum", "sum_abs", "sum")
SKIP_KEPT, SKIP_LOW_PRED, SKIP_ENTROPY, SKIP_BLURRED_PRED = 0, 1, 2, 3
PIC_SKIP_REASONS = {
    SKIP_KEPT: "kept",
    SKIP_LOW_PRED: "prediction on the original image < min_pred_value",
    SKIP_ENTROPY: "fully blurred image is not smaller (lossless WebP) than the original",
    SKIP_BLURRED_PRED: "prediction on the fully blurred image >= prediction on the original",
}


# ---------------------------------------------------------------------------------------------------------------
# CPU parts: identical to PAIR saliency's pic.py
# ---------------------------------------------------------------------------------------------------------------
def webp_size(image: np.ndarray) -> int:
    """Information estimate of PAIR's ``estimate_image_entropy``: bytes of the lossless WebP encoding."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="webp", lossless=True, quality=100)
    return buffer.tell()


def blurred_image(full_img: np.ndarray, pixel_mask: np.ndarray) -> np.ndarray:
    """PAIR's ``create_blurred_image(full_img, pixel_mask, method='linear')``, one triangulation for all channels.

    Keeps the pixels where ``pixel_mask`` is True (and the 4 corners), interpolates the rest linearly from them
    (fill value: the image's mean colour), rounds for integer images. Same result, bit for bit.
    """
    from scipy.interpolate import LinearNDInterpolator

    dtype = full_img.dtype
    gray = full_img.ndim == 2
    img = full_img[:, :, None] if gray else full_img
    mask = np.array(pixel_mask, dtype=bool, copy=True)
    h, w = mask.shape
    mask[[0, 0, h - 1, h - 1], [0, w - 1, 0, w - 1]] = True
    if mask.all():
        return full_img
    mean_color = np.mean(img, axis=(0, 1))
    out = img * mask[:, :, None].astype(np.float32)
    known = np.argwhere(mask).astype(np.float64)
    unknown = np.argwhere(~mask).astype(np.float64)
    values = img[mask].astype(np.float64)  # [n_known, C], row-major like PAIR's argwhere
    if h == 1 or w == 1:  # one row or column: Qhull cannot triangulate a line (PAIR crashes); interpolate along it
        pos, keep = np.arange(h * w), mask.reshape(-1)
        interp = np.stack([np.interp(pos[~keep], pos[keep], values[:, c]) for c in range(values.shape[1])], 1)
    else:
        interp = LinearNDInterpolator(known, values, fill_value=np.nan)(unknown)
    outside = np.isnan(interp)
    if outside.any():
        interp = np.where(outside, np.broadcast_to(mean_color, interp.shape), interp)
    out[~mask] = interp
    if gray:
        out = out[:, :, 0]
    if np.issubdtype(dtype, np.integer):
        out = np.round(out)
    return out.astype(dtype)


def random_seed_mask(height: int, width: int, fraction: float = 0.01, seed: int = 0, key: int = 0) -> np.ndarray:
    """PAIR's ``generate_random_mask`` drawn from a generator seeded by (seed, key): int(H*W*fraction) pixels."""
    rng = np.random.default_rng([int(seed) & (2**63 - 1), int(key) & (2**63 - 1)])
    mask = np.zeros((height, width), dtype=bool)
    idx = rng.choice(mask.size, replace=False, size=int(mask.size * fraction))
    mask[np.unravel_index(idx, mask.shape)] = True
    return mask


def image_key(image_id=None, pixels: np.ndarray | None = None) -> int:
    """A stable 63-bit key of an image: from its id when given, else from its uint8 pixels."""
    data = str(image_id).encode() if image_id is not None else np.ascontiguousarray(pixels).tobytes()
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "little") & (2**63 - 1)


def _one_blas_thread():
    """Qhull's barycentric transforms call LAPACK per simplex: with a multi-threaded BLAS and a pool of workers
    the BLAS threads oversubscribe the cores (100x slower on a busy machine). Limit BLAS to one thread."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def pic_curve_x(num_data_points: int = 1000) -> np.ndarray:
    """The common x axis of every PIC curve: ``num_data_points`` points of [0, 1) plus 1.0."""
    return np.append(np.linspace(0.0, 1.0, num=num_data_points, endpoint=False), 1.0)


def _curve(h_orig, h_blur, p_orig, p_blur, entropies, preds, keep_monotonous, num_data_points):
    """PAIR's normalisation, running maximum, interpolation and AUC for one image (float64 throughout)."""
    from scipy import interpolate

    tuples = []
    max_pred = 0.0
    for entropy, pred in zip(entropies, preds):
        ne = np.clip((entropy - h_blur) / (h_orig - h_blur), 0.0, 1.0)
        npred = np.clip((pred - p_blur) / (p_orig - p_blur), 0.0, 1.0)
        max_pred = max(max_pred, npred)
        tuples.append((ne, max_pred if keep_monotonous else npred))
    tuples += [(0.0, 0.0), (1.0, 1.0)]
    xs, ys = zip(*tuples)
    f = interpolate.interp1d(x=xs, y=ys)
    curve_x = np.linspace(0.0, 1.0, num=num_data_points, endpoint=False)
    curve_y = np.append(np.asarray(f(curve_x), dtype=np.float64), 1.0)
    return curve_y, float(np.trapezoid(curve_y, np.append(curve_x, 1.0)))


def aggregate_pic(curves, method: str = "median") -> dict[str, object]:
    """The paper's aggregate: point-wise median (or mean) of the per-image curves, then its AUC.

    ``curves`` [N, K] (tensor or array, e.g. the ``sic_curve`` rows of many batches); rows containing NaN (skipped
    images) are dropped. Returns ``{"auc": float, "curve_x": [K], "curve_y": [K], "n": images used}``, equal to
    PAIR's ``aggregate_individual_pic_results`` on the kept images. AUC is NaN when no image is left.
    """
    if method not in ("median", "mean"):
        raise ConfigError(f"invalid method={method!r}: choose 'median' or 'mean'")
    arr = curves.detach().cpu().double().numpy() if isinstance(curves, torch.Tensor) else np.asarray(curves, float)
    if arr.ndim != 2:
        raise ConfigError(f"curves must be [N, K], got shape {arr.shape}")
    x = pic_curve_x(arr.shape[1] - 1)
    arr = arr[~np.isnan(arr).any(axis=1)]
    if len(arr) == 0:
        return {"auc": float("nan"), "curve_x": x, "curve_y": np.full(x.shape, np.nan), "n": 0}
    y = np.median(arr, axis=0) if method == "median" else np.mean(arr, axis=0)
    return {"auc": float(np.trapezoid(y, x)), "curve_x": x, "curve_y": y, "n": len(arr)}


# ---------------------------------------------------------------------------------------------------------------
# The metric
# ---------------------------------------------------------------------------------------------------------------
@register_metric("pic", columns=(("sic", "SIC", "max"), ("aic", "AIC", "max")))
class PIC(Metric):
    """AIC and SIC per image (see the module docstring).

    Options:
        thresholds: fractions of most-salient pixels revealed, ascending (default PAIR's 13 values).
        min_pred_value: skip images whose prediction on the original is lower (PAIR default 0.8; its notebook
            uses 0.5). For AIC the prediction is 0/1, so any value in (0, 1] keeps exactly the correct images.
        keep_monotonous: running maximum of the normalised prediction (True, the paper's setting).
        num_data_points: curve samples on [0, 1) (1000; the curve has one more point, 1.0).
        random_mask_fraction: fraction of pixels in the seed mask (0.01).
        seed: seed of the per-image random masks; use the same value for every method.
        saliency: "abs_sum" (|sum_c A|, default) | "sum_abs" | "sum".
        workers: threads for interpolation and WebP (None: min(8, CPUs); 1: no pool).
        mean, std: the classifier's normalisation (needed to go to uint8 and back).
        max_batch: rows per forward (None: 128 on CUDA; on the CPU 32, 8 at 224-256 px).
        autocast: False (float32, default) | "bf16" | "fp16" for the forwards.

    Call as ``metric(model, x, attr, target, ids=None, masks=None)``; ``ids`` (one per image) key the random
    masks, ``masks`` ([B, H, W] bool) replaces them. Cost per image: 2 + len(thresholds) forwards (originals and
    blurred starts always; thresholds only for images that SIC or AIC keeps).
    """

    name = "pic"

    def __init__(self, thresholds: Sequence[float] = DEFAULT_THRESHOLDS, min_pred_value: float = 0.8,
                 keep_monotonous: bool = True, num_data_points: int = 1000, random_mask_fraction: float = 0.01,
                 seed: int = 0, saliency: str = "abs_sum", workers: int | None = None, mean=None, std=None,
                 max_batch: int | None = None, autocast=False):
        super().__init__(mean, std, max_batch)
        try:
            thresholds = tuple(float(t) for t in thresholds)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"invalid thresholds={thresholds!r}: ascending floats in (0, 1]") from e
        if not thresholds or any(not (0.0 < t <= 1.0) for t in thresholds) or list(thresholds) != sorted(thresholds):
            raise ConfigError(f"invalid thresholds={thresholds!r}: a non-empty ascending list of floats in (0, 1]")
        check_real("min_pred_value", min_pred_value, allowed="a float")
        check_int("num_data_points", num_data_points, 1)
        check_real("random_mask_fraction", random_mask_fraction, 0.0, 1.0, allowed="a float in [0, 1]")
        check_int("seed", seed)
        check_choice("saliency", saliency, SALIENCY_REDUCTIONS)
        check_int("workers", workers, 1, allow_none=True)
        self.thresholds = thresholds
        self.min_pred_value = float(min_pred_value)
        self.keep_monotonous = bool(keep_monotonous)
        self.num_data_points = num_data_points
        self.random_mask_fraction = float(random_mask_fraction)
        self.seed = seed
        self.saliency = saliency
        self.workers = workers or min(8, os.cpu_count() or 1)
        self.autocast = check_autocast(autocast)

    def cost(self, height: int = 256, width: int = 256) -> dict:
        return {"f": 2 + len(self.thresholds)}

    # -- conversions -----------------------------------------------------------------------------------------
    def to_uint8(self, x: torch.Tensor) -> np.ndarray:
        """[B,C,H,W] normalised -> uint8 [B,H,W,C] ([B,H,W] for one channel)."""
        pix = self.norm.denormalize(x.float()).clamp(0.0, 1.0)
        u8 = (pix * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return u8[..., 0] if u8.shape[-1] == 1 else u8

    def from_uint8(self, images: list[np.ndarray], device: torch.device) -> torch.Tensor:
        arr = torch.from_numpy(np.stack(images)).to(device)
        if arr.dim() == 3:
            arr = arr.unsqueeze(-1)
        return self.norm.normalize(arr.permute(0, 3, 1, 2).float() / 255.0)

    def saliency_map(self, attr: torch.Tensor) -> np.ndarray:
        a = attr.float() if attr.dim() == 4 else attr.float().unsqueeze(1)
        if self.saliency == "abs_sum":
            s = a.sum(1).abs()
        elif self.saliency == "sum_abs":
            s = a.abs().sum(1)
        else:
            s = a.sum(1)
        return s.cpu().numpy()

    def seed_masks(self, images: np.ndarray, ids=None) -> np.ndarray:
        """The per-image random seed masks [B, H, W] (deterministic in ``seed`` and the image or its id)."""
        h, w = images.shape[1:3]
        keys = [image_key(image_id=i) for i in ids] if ids is not None else [image_key(pixels=im) for im in images]
        return np.stack([random_seed_mask(h, w, self.random_mask_fraction, self.seed, k) for k in keys])

    # -- call ------------------------------------------------------------------------------------------------
    def __call__(self, model, x, attr, target, ids=None, masks=None) -> dict[str, torch.Tensor]:
        if attr.shape[0] != x.shape[0] or attr.shape[-2:] != x.shape[-2:]:
            raise ConfigError(f"attr {tuple(attr.shape)} does not match x {tuple(x.shape)}")
        if ids is not None and len(ids) != len(x):
            raise ConfigError(f"got {len(ids)} ids for {len(x)} images")
        target = torch.as_tensor(target, device=x.device).long().view(-1)
        return self.compute(model, x.float(), attr.float().to(x.device), target, ids=ids, masks=masks)

    def _map(self, fn, items):
        with _one_blas_thread():
            if self.workers <= 1 or len(items) <= 1:
                return [fn(i) for i in items]
            with ThreadPoolExecutor(max_workers=min(self.workers, len(items))) as pool:
                return list(pool.map(fn, items))

    def _predict(self, model, images: list[np.ndarray], targets: torch.Tensor, device):
        probs, correct = score_rows(model, len(images), lambda s, e: self.from_uint8(images[s:e], device),
                                    targets, self.chunker, device, self.autocast,
                                    row_shape=images[0].shape[:2] if images else None)
        return probs.double().cpu().numpy(), correct.double().cpu().numpy()

    def compute(self, model, x, attr, target, ids=None, masks=None):
        b = x.shape[0]
        device = x.device
        imgs = self.to_uint8(x)
        sal = self.saliency_map(attr)
        if masks is None:
            masks = self.seed_masks(imgs, ids)
        else:
            masks = masks.cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
            masks = masks.astype(bool)
            if masks.shape != imgs.shape[:3]:
                raise ConfigError(f"masks {masks.shape} must be [B, H, W] = {imgs.shape[:3]}")

        def start(i):
            blurred = blurred_image(imgs[i], masks[i])
            return webp_size(imgs[i]), blurred, webp_size(blurred)

        first = self._map(start, list(range(b)))
        h_orig = [f[0] for f in first]
        h_blur = [f[2] for f in first]
        rows = [imgs[i] for i in range(b)] + [f[1] for f in first]
        p, acc = self._predict(model, rows, torch.cat([target, target]), device)
        preds = {"sic": (p[:b], p[b:]), "aic": (acc[:b], acc[b:])}

        skip = {}
        for key, (po, pb) in preds.items():
            code = np.zeros(b, dtype=np.int64)
            for i in range(b):
                if po[i] < self.min_pred_value:
                    code[i] = SKIP_LOW_PRED
                elif h_blur[i] >= h_orig[i]:
                    code[i] = SKIP_ENTROPY
                elif pb[i] >= po[i]:
                    code[i] = SKIP_BLURRED_PRED
            skip[key] = code

        todo = [i for i in range(b) if skip["sic"][i] == SKIP_KEPT or skip["aic"][i] == SKIP_KEPT]
        n_t = len(self.thresholds)

        def reveal(task):
            i, t = task
            quantile = np.quantile(sal[i], 1 - self.thresholds[t])
            mask = np.logical_or(sal[i] >= quantile, masks[i])
            blurred = blurred_image(imgs[i], mask)
            return blurred, webp_size(blurred)

        steps = self._map(reveal, [(i, t) for i in todo for t in range(n_t)])
        if todo:
            tgt = target[torch.tensor(todo, device=device)].repeat_interleave(n_t)
            tp, tacc = self._predict(model, [s[0] for s in steps], tgt, device)
        k = self.num_data_points + 1
        out = {}
        for key in ("sic", "aic"):
            auc = np.full(b, np.nan)
            curves = np.full((b, k), np.nan)
            po, pb = preds[key]
            for j, i in enumerate(todo):
                if skip[key][i] != SKIP_KEPT:
                    continue
                ent = [s[1] for s in steps[j * n_t:(j + 1) * n_t]]
                pr = (tp if key == "sic" else tacc)[j * n_t:(j + 1) * n_t]
                curves[i], auc[i] = _curve(h_orig[i], h_blur[i], float(po[i]), float(pb[i]), ent,
                                           [float(v) for v in pr], self.keep_monotonous, self.num_data_points)
            out[key] = torch.tensor(auc, dtype=torch.float32, device=device)
            out[f"{key}_skip"] = torch.tensor(skip[key], device=device)
            out[f"{key}_curve"] = torch.tensor(curves, dtype=torch.float32, device=device)
        return out


__all__ = [
    "DEFAULT_THRESHOLDS",
    "PIC",
    "PIC_SKIP_REASONS",
    "aggregate_pic",
    "blurred_image",
    "image_key",
    "pic_curve_x",
    "random_seed_mask",
    "webp_size",
]
