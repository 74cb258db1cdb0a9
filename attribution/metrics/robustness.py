"""Robustness of a map to small input noise: the method is re-run on noisy copies of each image (Quantus 0.6's
``MaxSensitivity`` and ``LocalLipschitzEstimate``: same defaults, same formulas), all the images and
their copies stacked into few method calls (the method chunks its own work). Lower is better. Cost: ``nr_samples``
method calls per image.

- ``max_sensitivity`` (Yeh et al., "On the (In)fidelity and Sensitivity of Explanations", NeurIPS 2019):
  max_n ||a(x) - a(x + eps_n)||_F / ||a(x)||_F, eps_n ~ U(-lower_bound, lower_bound) per input entry (or
  U(lower_bound, upper_bound) when ``upper_bound`` is set), in the classifier's (normalised) input space.
- ``local_lipschitz`` (Alvarez-Melis & Jaakkola, "On the Robustness of Interpretability Methods", 2018):
  max_n ||a(x) - a(x + eps_n)||_2 / (||eps_n||_2 + 1e-10), eps_n ~ N(perturb_mean, perturb_std^2), maps normalised
  by their maximum |a| (Quantus's default ``normalise=True``).

``a(x)`` is the given map; the noisy maps are reduced as it is (``reduce_channels``). The noise of an image is
seeded by ``seed`` and the image's pixels (:func:`attribution.metrics._rerun.draw_noise`): the same whatever its
batch. ``return_nan_when_prediction_changes``: an image any of whose copies changes the predicted class scores NaN (as
Quantus: its maximum then meets a NaN; one forward per copy). Normalisation is per image
(Quantus divides by the batch's maximum: equal at batch size 1, or given ``normalise_axes`` (1, 2, 3)).
A map that ignores its input would score 0, perfectly robust: robustness is only worth reading beside a
faithfulness metric. The ``random`` control draws its map from the image's values, so each noisy copy gets
fresh noise: it scores as noise does (max-sensitivity about sqrt(2)), not robust.
"""
from __future__ import annotations

import torch

from ..errors import check_bool, check_int, check_real
from ._rerun import MethodMetric, draw_noise, reduce_map
from ._similarity import normalise_by_max
from .base import register_metric


class _Robustness(MethodMetric):
    kind = "uniform"

    def __init__(self, nr_samples: int, abs: bool, normalise: bool, return_nan_when_prediction_changes: bool,
                 seed: int, reduce_channels: str, subsample: float, mean, std):
        super().__init__(reduce_channels, subsample, seed, mean, std)
        self.nr_samples = check_int("nr_samples", nr_samples, 1)
        self.abs = check_bool("abs", abs)
        self.normalise = check_bool("normalise", normalise)
        self.nan_on_change = check_bool("return_nan_when_prediction_changes", return_nan_when_prediction_changes)

    def prepare(self, a):
        a = normalise_by_max(a) if self.normalise else a
        return (a.abs() if self.abs else a).flatten(1).double()

    def bounds(self) -> tuple[float, float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def ratio(self, a, a_noisy, x, x_noisy) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def compute(self, model, x, attr, target, method):
        a = self.prepare(reduce_map(attr, self.reduce_channels))
        lo, hi = self.bounds()
        pred = None
        if self.nan_on_change:
            with torch.no_grad():
                pred = model(x).argmax(-1)

        def draw(s0, s1):
            return x[None] + draw_noise(x, s0, s1, self.seed, 0, self.kind, lo, hi)

        ratios = torch.full((self.nr_samples, len(x)), float("nan"), dtype=torch.float64, device=x.device)
        for s0, xs, maps in self.noisy_maps(method, model, x, target, self.nr_samples, draw):
            k = len(maps)
            r = self.ratio(a.repeat(k, 1), self.prepare(maps.flatten(0, 1)), x.flatten(1).double().repeat(k, 1),
                           xs.flatten(0, 1).flatten(1).double()).view(k, len(x))
            if pred is not None:
                with torch.no_grad():
                    changed = (model(xs.flatten(0, 1)).argmax(-1) != pred.repeat(k)).view(k, len(x))
                r = torch.where(changed, torch.full_like(r, float("nan")), r)
            ratios[s0:s0 + k] = r
        if self.nan_on_change:  # Quantus takes np.max: one changed copy makes the score NaN
            worst = ratios.amax(0)
        else:  # np.nanmax: NaN only where every copy is NaN
            worst = torch.where(ratios.isnan(), torch.full_like(ratios, -float("inf")), ratios).amax(0)
            worst = torch.where(ratios.isnan().all(0), torch.full_like(worst, float("nan")), worst)
        return {self.name: worst.float()}


@register_metric("max_sensitivity", columns=(("max_sensitivity", "MaxSens", "min"),))
class MaxSensitivity(_Robustness):
    """Max-sensitivity (Yeh et al., 2019) as Quantus ``MaxSensitivity``; see the module docstring.

    Options (Quantus's defaults): ``nr_samples`` 200, ``lower_bound`` 0.2, ``upper_bound`` None, ``abs`` False,
    ``normalise`` False, ``return_nan_when_prediction_changes`` False, ``seed`` 42 (of the noise)."""

    name = "max_sensitivity"
    kind = "uniform"

    def __init__(self, nr_samples: int = 200, lower_bound: float = 0.2, upper_bound: float | None = None,
                 abs: bool = False, normalise: bool = False, return_nan_when_prediction_changes: bool = False,
                 seed: int = 42, reduce_channels: str = "sum", subsample: float = 1.0, mean=None, std=None):
        super().__init__(nr_samples, abs, normalise, return_nan_when_prediction_changes, seed, reduce_channels,
                         subsample, mean, std)
        self.lower_bound = check_real("lower_bound", lower_bound)
        self.upper_bound = check_real("upper_bound", upper_bound, self.lower_bound, low_open=True, allow_none=True,
                                      allowed=f"a number > lower_bound={lower_bound} or None")

    def bounds(self):
        if self.upper_bound is None:
            return -self.lower_bound, self.lower_bound
        return self.lower_bound, self.upper_bound

    def ratio(self, a, a_noisy, x, x_noisy):
        return (a - a_noisy).norm(dim=1) / a.norm(dim=1)


@register_metric("local_lipschitz", columns=(("local_lipschitz", "LipEst", "min"),))
class LocalLipschitz(_Robustness):
    """Local Lipschitz estimate (Alvarez-Melis & Jaakkola, 2018) as Quantus ``LocalLipschitzEstimate``; see the
    module docstring.

    Options (Quantus's defaults): ``nr_samples`` 200, ``perturb_mean`` 0.0, ``perturb_std`` 0.1, ``abs`` False,
    ``normalise`` True (by the maximum), ``return_nan_when_prediction_changes`` False, ``seed`` 42 (of the noise)."""

    name = "local_lipschitz"
    kind = "normal"

    def __init__(self, nr_samples: int = 200, perturb_mean: float = 0.0, perturb_std: float = 0.1,
                 abs: bool = False, normalise: bool = True, return_nan_when_prediction_changes: bool = False,
                 seed: int = 42, reduce_channels: str = "sum", subsample: float = 1.0, mean=None, std=None):
        super().__init__(nr_samples, abs, normalise, return_nan_when_prediction_changes, seed, reduce_channels,
                         subsample, mean, std)
        self.perturb_mean = check_real("perturb_mean", perturb_mean)
        self.perturb_std = check_real("perturb_std", perturb_std, 0.0)

    def bounds(self):
        return self.perturb_mean, self.perturb_std

    def ratio(self, a, a_noisy, x, x_noisy):
        return (a - a_noisy).norm(dim=1) / ((x - x_noisy).norm(dim=1) + 1e-10)


__all__ = ["LocalLipschitz", "MaxSensitivity"]
