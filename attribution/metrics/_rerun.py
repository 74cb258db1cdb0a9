"""What the metrics that re-run the attribution method share (sanity: a randomised model; robustness: noisy inputs).

- :class:`MethodMetric`: ``metric(model, x, attr, target, method=m)``; ``m`` is an attribution method object
  (``m(model, x, target)`` -> [B,C,H,W]). Its maps are reduced to the [B,1,H,W] map Quantus gets
  (``reduce_channels``: "sum" (default, Quantus's convention), "abs_sum" or "none"), the given ``attr`` too.
  ``subsample`` (default 1.0) scores only a fraction of the images, each picked by a hash of its pixels and ``seed``,
  so the same images whatever their batch; the others get NaN in every output (the demo's reduced setting).
- :func:`draw_noise`: the seeded noise of the noisy copies: sample s of an image comes from a generator seeded with
  (seed, the image's pixels, stream, s), so an image gets the same noise whatever batch it is in and however the
  copies are stacked into calls. Tests replace it by NumPy's global draws in Quantus's order to compare with Quantus.
"""
from __future__ import annotations

import torch

from ..engine.seeding import image_generators, rand_per_image
from ..errors import ConfigError, check_choice, check_int, check_real
from .base import Metric

REDUCTIONS = ("sum", "abs_sum", "none")


def reduce_map(a: torch.Tensor, how: str) -> torch.Tensor:
    """[B,C,H,W] -> [B,1,H,W] ("sum", "abs_sum") or as it is ("none"), float32."""
    a = a.float()
    if how == "sum":
        return a.sum(1, keepdim=True)
    if how == "abs_sum":
        return a.abs().sum(1, keepdim=True)
    return a


def image_seeds(x: torch.Tensor, seed: int) -> list[int]:
    """One integer per image of x, from (seed, the image's float32 bytes) (:mod:`attribution.engine.seeding`)."""
    return [int(torch.randint(2 ** 62, (1,), generator=g)) for g in image_generators(x, seed)]


def draw_noise(x: torch.Tensor, start: int, stop: int, seed: int, stream: int, kind: str, a: float,
               b: float) -> torch.Tensor:
    """Noise samples [start, stop) of every image of x: [stop - start, *x.shape] float32 on x's device.
    ``kind`` "normal" (mean a, std b) or "uniform" (on [a, b)); ``stream`` tells apart the noise of one call's
    uses (e.g. the layers of smooth MPRT)."""
    base = image_seeds(x, seed)
    out = torch.empty((stop - start, *x.shape), dtype=torch.float32)
    for i, bs in enumerate(base):
        for s in range(start, stop):
            g = torch.Generator().manual_seed(hash((bs, stream, s)) % (2 ** 63))
            if kind == "normal":
                out[s - start, i] = torch.randn(x.shape[1:], generator=g, dtype=torch.float64).mul_(b).add_(a)
            else:
                out[s - start, i] = torch.rand(x.shape[1:], generator=g, dtype=torch.float64).mul_(b - a).add_(a)
    return out.to(x.device)


class MethodMetric(Metric):
    """Base of the metrics that re-run the method. Options: ``reduce_channels``, ``subsample``, ``seed`` (of the
    subsample and of the metric's own draws). The method is called on all the images at once, noisy copies
    stacked up to ``rows_per_call`` rows (it chunks its own work: ``method.max_batch``)."""

    needs_method = True
    #: images x noisy copies handed to the method in one call (the method chunks its own work within it)
    rows_per_call = 256

    def __init__(self, reduce_channels: str = "sum", subsample: float = 1.0, seed: int = 42, mean=None, std=None):
        super().__init__(mean, std)
        self.reduce_channels = check_choice("reduce_channels", reduce_channels, REDUCTIONS)
        self.subsample = check_real("subsample", subsample, 0.0, 1.0, low_open=True)
        self.seed = check_int("seed", seed, 0, allowed="a non-negative integer")

    def __call__(self, model, x: torch.Tensor, attr: torch.Tensor, target: torch.Tensor,
                 method=None) -> dict[str, torch.Tensor]:
        if method is None or not callable(method):
            raise ConfigError(f"metric {self.name!r} re-runs the attribution method: call it as "
                              f"metric(model, x, attr, target, method=m) with m an attribution method")
        if attr.shape[0] != x.shape[0] or attr.shape[-2:] != x.shape[-2:]:
            raise ConfigError(f"attr {tuple(attr.shape)} does not match x {tuple(x.shape)}")
        if model.training:
            raise ConfigError(f"metric {self.name!r} needs the model in eval mode (call model.eval())")
        target = torch.as_tensor(target, device=x.device).long().view(-1)
        x, attr = x.float(), attr.float().to(x.device)
        keep = self.picked(x)
        if bool(keep.all()):
            return self.compute(model, x, attr, target, method)
        out = {}
        part = self.compute(model, x[keep], attr[keep], target[keep], method) if bool(keep.any()) else None
        for key in (part or {}):
            val = part[key]
            full = torch.full((len(x), *val.shape[1:]), float("nan"), dtype=val.dtype, device=val.device)
            full[keep.to(val.device)] = val
            out[key] = full
        if part is None:
            out = {c: torch.full((len(x),), float("nan"), device=x.device) for c in self.column_keys()}
        return out

    def picked(self, x: torch.Tensor) -> torch.Tensor:
        """[B] bool: the images this metric scores (all of them at ``subsample`` 1)."""
        if self.subsample >= 1.0:
            return torch.ones(len(x), dtype=torch.bool, device=x.device)
        return rand_per_image(x, 1, self.seed + 1)[:, 0] < self.subsample

    def column_keys(self) -> list[str]:
        from .base import METRICS

        return [c.key for c in METRICS.info(self.name).columns]

    def explain(self, method, model, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The method's maps of x on ``model``, reduced as the given ones."""
        return reduce_map(method(model, x, target).detach(), self.reduce_channels)

    def noisy_maps(self, method, model, x, target, n: int, draw):
        """Maps of ``n`` noisy copies of x, as many copies per method call as fit in ``rows_per_call`` rows (one
        at least): yields (first copy s, x' [k,B,...], maps [k,B,...]) with ``draw(start, stop)`` -> the perturbed
        inputs [stop - start, *x.shape]."""
        per_call = max(1, self.rows_per_call // len(x))
        for s0 in range(0, n, per_call):
            s1 = min(n, s0 + per_call)
            xs = draw(s0, s1)
            k = s1 - s0
            maps = self.explain(method, model, xs.reshape(k * len(x), *x.shape[1:]), target.repeat(k))
            yield s0, xs, maps.reshape(k, len(x), *maps.shape[1:])

    def compute(self, model, x, attr, target, method) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


__all__ = ["MethodMetric", "REDUCTIONS", "draw_noise", "image_seeds", "reduce_map"]
