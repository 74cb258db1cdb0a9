"""XRAI: region attribution over any method's map (Kapishnikov et al., "XRAI: Better Attributions Through
Regions", ICCV 2019), as PAIR saliency's ``saliency.core.XRAI`` computes it from a given base attribution.

1. The base map a [C,H,W] is reduced over channels by its maximum: a_p = max_c a_cp (PAIR's aggregation).
2. Candidate regions: Felzenszwalb segmentations of the image (min-max rescaled to [-1, 1], resized to
   224 x 224 with cubic interpolation) at scales 50, 100, 150, 250, 500, 1200 (sigma 0.8, min segment size 150),
   resized back (nearest) and each segment dilated by a disk of radius 5.
3. Greedy selection ("full"): with S the pixels selected so far, add the region R of largest gain

       gain(R) = sum_{p in R \\ S} a_p / |R \\ S|           (attribution density of the pixels R adds)

   among those adding at least ``min_pixel_diff`` pixels; every pixel of R \\ S gets the value gain(R). Stop
   when |S| / (H W) exceeds ``area_threshold`` or no region is left; pixels never selected get their mean
   attribution, so the map keeps the sum of a. "fast" ranks the regions once by their whole-region density
   and adds them in that order (overlaps ignored in the ranking; ``area_threshold`` ignored, as in PAIR).

The loop keeps each region's uncovered pixel count and attribution sum and updates only the regions that
contain the newly covered pixels, so one image costs about O(sum of region sizes) instead of PAIR's O(regions^2
x pixels); the winner and its value are the float32 means PAIR computes (near ties re-checked exactly, first
region in PAIR's order wins), so the map equals PAIR's. The base method runs once on the batch; segmentation and
selection run per image on the CPU (scikit-image, the ``xrai`` extra).

Output: the [H,W] XRAI map repeated over channels and divided by C (the channel sum is PAIR's map), float32 on
x.device; ``extras`` keep the base method's, plus ``base_attr`` (its map) and ``xrai_segments`` (regions ranked
by gain, 1 = most important: [B,H,W] long, or with ``flatten_xrai_segments=False`` [B,N,H,W] bool masks, most
important first, padded with empty masks to the batch's largest N). A constant image is segmented as zeros
(PAIR divides by zero there); a base map with a non-finite value gives a NaN map for that image.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import torch

from ..errors import ConfigError, UnknownOptionError, check_bool, check_choice, check_int, check_real
from ..methods.base import Attribution, AttributionMethod
from .wrapper import MethodWrapper

# PAIR's segmentation constants (saliency.core.xrai)
SCALES = (50, 100, 150, 250, 500, 1200)
SIGMA = 0.8
RESIZE = (224, 224)
MIN_SEGMENT_SIZE = 150
DILATION_RADIUS = 5

OPTIONS = {"area_threshold": 1.0, "algorithm": "full", "min_pixel_diff": 50, "flatten_xrai_segments": True}


def _skimage():
    if importlib.util.find_spec("skimage") is None:
        raise ConfigError("XRAI needs scikit-image: pip install 'attribution-bench[xrai]'")
    from skimage import segmentation, transform
    from skimage.morphology import disk

    return segmentation, transform, disk


def segment_masks(image: np.ndarray) -> list[np.ndarray]:
    """PAIR's candidate regions of an [H,W,C] image: each a sorted array of flat pixel indices, in PAIR's order
    (scale, then label; empty ones left out)."""
    segmentation, transform, disk = _skimage()
    h, w = image.shape[:2]
    hi, lo = np.max(image), np.min(image)
    im = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
    im = transform.resize(im * 2.0 - 1.0, RESIZE, order=3, mode="constant", preserve_range=True, anti_aliasing=True)
    offsets = np.argwhere(disk(DILATION_RADIUS)) - DILATION_RADIUS
    keys, first = [], 0
    for scale in SCALES:
        seg = segmentation.felzenszwalb(im, scale=scale, sigma=SIGMA, min_size=MIN_SEGMENT_SIZE)
        seg = transform.resize(seg, (h, w), order=0, preserve_range=True, mode="constant",
                               anti_aliasing=False).astype(np.int64)
        keys.append(_dilated_keys(seg, offsets) + first * h * w)
        first += int(seg.max()) + 1
    keys = np.concatenate(keys)  # key = region * H W + pixel: sorted by region, then pixel
    region, pixel = np.divmod(keys, h * w)
    return np.split(pixel, np.flatnonzero(np.diff(region)) + 1)


def _dilated_keys(lab: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sorted label * H W + pixel for every pixel of every label's mask dilated by the footprint ``offsets``: a
    pixel joins label l where some pixel within the footprint has label l (only label borders add pairs)."""
    h, w = lab.shape
    flat = np.arange(h * w).reshape(h, w)
    member = np.zeros((int(lab.max()) + 1) * h * w, dtype=bool)
    member[lab.ravel() * (h * w) + flat.ravel()] = True
    for dy, dx in offsets:
        src = lab[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)]
        dst = lab[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
        pix = flat[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
        border = src != dst
        member[src[border] * (h * w) + pix[border]] = True
    return np.flatnonzero(member)


def _mean(a: np.ndarray, idx: np.ndarray):
    """PAIR's gain: the mean of a over the pixels ``idx`` in a's precision (-inf for none)."""
    return a[idx].mean() if len(idx) else -np.inf


def _select_full(a, masks, area_threshold, min_pixel_diff):
    """PAIR's greedy loop, with per-region uncovered counts and sums updated incrementally."""
    n, k = a.size, len(masks)
    sizes = np.array([len(m) for m in masks], dtype=np.int64)
    owner = np.repeat(np.arange(k), sizes)
    pixel = np.concatenate(masks)
    a64, abs64 = a.astype(np.float64), np.abs(a.astype(np.float64))
    cnt, tot, tot_abs = sizes.copy(), np.bincount(owner, a64[pixel], k), np.bincount(owner, abs64[pixel], k)
    order = np.argsort(pixel, kind="stable")  # pixel -> the regions holding it
    by_pixel, ptr = owner[order], np.concatenate([[0], np.cumsum(np.bincount(pixel, minlength=n))])
    eps = 64 * np.finfo(a.dtype).eps  # bound on PAIR's float32 mean error, relative to the mean of |a|
    alive, covered, n_covered = np.ones(k, bool), np.zeros(n, bool), 0
    out, trace = np.full(n, -np.inf), []
    while n_covered / n <= area_threshold:
        alive &= cnt >= min_pixel_diff
        if not alive.any():
            break
        live = np.flatnonzero(alive)
        gain, err = tot[live] / cnt[live], eps * tot_abs[live] / cnt[live]
        near = live[gain + err >= np.max(gain - err)]  # every region that PAIR's float32 gains could pick
        diffs = [masks[j][~covered[masks[j]]] for j in near]
        exact = [_mean(a, d) for d in diffs]
        best = int(np.argmax(exact))  # first maximum: PAIR's strict '>' over regions in order
        delta, g = diffs[best], exact[best]
        trace.append((delta, g))
        out[delta], covered[delta] = g, True
        n_covered += len(delta)
        alive[near[best]] = False
        lens = ptr[delta + 1] - ptr[delta]
        hit = by_pixel[np.repeat(ptr[delta] - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())]
        cnt -= np.bincount(hit, minlength=k)
        vals = np.repeat(a64[delta], lens)
        tot -= np.bincount(hit, vals, k)
        tot_abs -= np.bincount(hit, np.abs(vals), k)
    return out, trace


def _select_fast(a, masks, min_pixel_diff):
    """PAIR's fast variant: regions in order of whole-region density (stable), each adding its new pixels."""
    gains = np.array([_mean(a, m) for m in masks])
    covered, out, trace = np.zeros(a.size, bool), np.full(a.size, -np.inf), []
    for j in np.argsort(-gains, kind="stable"):
        delta = masks[j][~covered[masks[j]]]
        if len(delta) < min_pixel_diff:
            continue
        g = _mean(a, delta)
        trace.append((delta, g))
        out[delta], covered[masks[j]] = g, True
    return out, trace


def xrai(image: np.ndarray, attr: np.ndarray, *, area_threshold: float = 1.0, algorithm: str = "full",
         min_pixel_diff: int = 50) -> tuple[np.ndarray, list[np.ndarray]]:
    """XRAI of one image: ``image`` [H,W,C] (any range), ``attr`` [H,W] (channels already reduced).

    Returns the [H,W] float64 map and the selected regions as flat pixel indices, most important first (the
    pixels never selected last), as PAIR's ``XRAI._xrai`` / ``_xrai_fast`` return them."""
    h, w = attr.shape
    a = np.ascontiguousarray(attr).ravel()
    if not np.isfinite(a).all():
        return np.full((h, w), np.nan), [np.arange(a.size)]
    masks = segment_masks(image)
    if algorithm == "full":
        out, trace = _select_full(a, masks, area_threshold, min_pixel_diff)
    else:
        out, trace = _select_fast(a, masks, min_pixel_diff)
    rest = np.flatnonzero(out == -np.inf)
    out[rest] = _mean(a, rest)
    regions = [d for d, _ in sorted(trace, key=lambda t: -t[1])] + ([rest] if len(rest) else [])
    return out.reshape(h, w), regions


class XRAI(MethodWrapper):
    """XRAI over ``method``'s map. Options as PAIR's ``XRAIParameters`` names them, with its defaults:
    ``area_threshold`` (fraction of the image the full loop covers before the rest is merged, in [0, 1]),
    ``algorithm`` ("full" | "fast"), ``min_pixel_diff`` (fewest new pixels a region must add; PAIR's
    ``experimental_params``), ``flatten_xrai_segments`` (form of ``extras["xrai_segments"]``)."""

    is_path = False

    def __init__(self, method: AttributionMethod, **options):
        super().__init__(method, "post")
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise UnknownOptionError(f"xrai got unknown option(s) {[f'post.{k}' for k in unknown]}; "
                                     f"allowed: {[f'post.{k}' for k in OPTIONS]}")
        opts = {**OPTIONS, **options}
        self.area_threshold = check_real("post.area_threshold", opts["area_threshold"], 0.0, 1.0)
        self.algorithm = check_choice("post.algorithm", opts["algorithm"], ("full", "fast"))
        self.min_pixel_diff = check_int("post.min_pixel_diff", opts["min_pixel_diff"], 1)
        self.flatten_xrai_segments = check_bool("post.flatten_xrai_segments", opts["flatten_xrai_segments"])
        _skimage()
        self.name = f"{method.name}+xrai"

    def attribute(self, model, x: torch.Tensor, target: torch.Tensor) -> Attribution:
        x, target = self._check_inputs(x, target)
        base = self.method.attribute(model, x, target)
        images = self.norm.denormalize(x).permute(0, 2, 3, 1).cpu().double().numpy()  # PAIR's [H,W,C]
        reduced = base.attr.detach().float().amax(1).cpu().numpy()
        maps, segs = [], []
        for image, a in zip(images, reduced):
            m, regions = xrai(image, a, area_threshold=self.area_threshold, algorithm=self.algorithm,
                              min_pixel_diff=self.min_pixel_diff)
            maps.append(m)
            segs.append(regions)
        c = x.shape[1]
        attr = torch.from_numpy(np.stack(maps)).float().div(c).unsqueeze(1).expand(-1, c, -1, -1)
        extras = {**base.extras, "base_attr": base.attr,
                  "xrai_segments": self._segments(segs, x.shape[2:]).to(x.device)}
        return Attribution(attr.contiguous().to(x.device), None, None, extras)

    def _segments(self, segs, hw) -> torch.Tensor:
        n = hw[0] * hw[1]
        if self.flatten_xrai_segments:
            ranks = np.zeros((len(segs), n), dtype=np.int64)
            for row, regions in zip(ranks, segs):
                for i, r in enumerate(regions):
                    row[r] = i + 1
            return torch.from_numpy(ranks).view(len(segs), *hw)
        masks = np.zeros((len(segs), max(len(r) for r in segs), n), dtype=bool)
        for b, regions in enumerate(segs):
            for i, r in enumerate(regions):
                masks[b, i, r] = True
        return torch.from_numpy(masks).view(len(segs), -1, *hw)

    def cost(self, height: int = 256, width: int = 256) -> dict[str, float]:
        return self.method.cost(height, width)

    def __repr__(self):
        return f"XRAI(method={self.method!r}, algorithm={self.algorithm!r}, area_threshold={self.area_threshold})"
