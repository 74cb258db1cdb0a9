"""Quantus 0.6 faithfulness metrics behind the library's metric interface (one adapter, no fork of Quantus).

Every listed Quantus metric is registered under a snake_case name, and ``quantus`` takes any Quantus metric
class by ``metric_name``::

    attribution.build_metric("quantus_pixel_flipping", features_in_step=784)
    attribution.build_metric("quantus", metric_name="PixelFlipping", features_in_step=784)   # the same

=====================================  ===========================  ====================================
registered name                        Quantus class                per-image output(s)
=====================================  ===========================  ====================================
quantus_faithfulness_correlation       FaithfulnessCorrelation      scalar
quantus_faithfulness_estimate          FaithfulnessEstimate         scalar
quantus_pixel_flipping                 PixelFlipping                AUC + curve
quantus_region_perturbation            RegionPerturbation           AUC + curve
quantus_monotonicity                   Monotonicity (Arya)          scalar (0/1)
quantus_monotonicity_correlation       MonotonicityCorrelation      scalar
quantus_road                           ROAD                         mean accuracy + curve
quantus_irof                           IROF                         scalar (area over the curve)
quantus_selectivity                    Selectivity                  AUC + curve
quantus_sufficiency                    Sufficiency                  scalar (depends on the whole batch)
quantus_infidelity                     Infidelity                   scalar
=====================================  ===========================  ====================================

Output keys: ``<registered name>`` [B], ``unchanged`` [B] (1.0 where Quantus warned that the perturbation
"didn't cause change in input" for that image, e.g. a baseline equal to the image: its score measures nothing, and
the tables flag the metric) and, for curve metrics, ``<registered name>_curve`` [B, K]. The scalar of a
curve metric is Quantus's own ``utils.calculate_auc`` of that image's curve (trapezoid, dx = 1, i.e. in step
units, as ``get_auc_score`` averages); for ROAD it is the mean over ``percentages`` of the per-image top-1
correctness (Quantus only reports the mean curve over images; the adapter keeps the per-image rows).

How it calls Quantus: ``metric_cls(**kwargs)(model=model, x_batch=x.cpu().numpy(), y_batch=target, a_batch=a,
channel_first=True, device=str(x.device), batch_size=max_batch or B)`` with ``return_aggregate=False`` and the
model in eval mode (Quantus refuses a training-mode model; so does the adapter). Inside the call ``np.trapz`` is
made available (:func:`attribution.metrics._compat.numpy_trapz`), Quantus still uses it and NumPy 2.4 removed it.

Adapter options (every metric):
    reduce_channels: how [B,C,H,W] attributions become Quantus's ``a_batch``: "sum" (default, Quantus's
        convention, [B,1,H,W]), "abs_sum", or "none" (all channels). ROAD needs a spatial map ("none" refused).
    seed: NumPy global seed set for the call (state restored afterwards) so the random metrics
        (FaithfulnessCorrelation, MonotonicityCorrelation, Infidelity, ROAD noise) are reproducible; None leaves
        the global RNG alone.
    softmax: None (the Quantus metric's default) or a bool passed to the call.
    max_batch: Quantus ``batch_size`` (None: the whole batch in one Quantus batch).
    device: None (= x.device) or a device string for Quantus.
    mean, std: accepted for uniformity, unused.
Images whose input or attribution holds NaN/Inf get NaN in every output; the others are scored in one call without
them (Sufficiency, which compares images within the batch, then sees the finite ones only).
Any other keyword goes to the Quantus class's constructor (checked against its signature). Fast defaults the
adapter sets unless given (Quantus's own defaults are per-element or per-4x4-patch loops, hours on 224 x 224):

- ``features_in_step="auto"`` (FaithfulnessEstimate, PixelFlipping, Monotonicity, MonotonicityCorrelation): the
  smallest divisor of H*W that is >= H*W / 64, so 64 steps per channel of the broadcast map (Quantus asserts
  H*W % features_in_step == 0); e.g. 784 at 224 x 224, 4 at 16 x 16. MonotonicityCorrelation: H*W / 16 and
  ``nr_samples=10`` (Quantus: 100 samples per step), since every step costs ``nr_samples`` forwards.
- ROAD ``percentages=[10, 20, ..., 90]``; Selectivity ``patch_size="auto"`` = max(8, H // 14);
  Infidelity ``perturb_patch_sizes="auto"`` = [max(4, H // 8)], ``n_perturb_samples=10``.
- ``disable_warnings=True``, ``display_progressbar=False``, ``return_aggregate=False``.

Quantus 0.6 multichannel bugs, worked around without patching Quantus (only for C > 1; with one channel the call
is exactly Quantus's): IROF builds a [B,1,H,W] segment mask but asserts it has the image's shape - the adapter
passes a ``perturb_func`` that broadcasts the mask to the channels; ROAD ranks the channel-broadcast attribution
(C*H*W entries) but imputes by pixel index (H*W) - the adapter passes the map broadcast to [B,C,H,W] (so ROAD
takes p% of the C*H*W entries) and a ``perturb_func`` that maps entry indices to their pixels (index mod H*W,
first occurrence order), i.e. ~p% of the pixels are imputed as ROAD intends.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import re
import warnings
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, check_bool, check_choice, check_int
from ._compat import numpy_trapz
from .base import Metric, register_metric

# registered name -> (Quantus class, output kind, adapter defaults)
QUANTUS_METRICS: dict[str, tuple] = {
    "quantus_faithfulness_correlation": ("FaithfulnessCorrelation", "scalar", {}),
    "quantus_faithfulness_estimate": ("FaithfulnessEstimate", "scalar", {"features_in_step": "auto"}),
    "quantus_pixel_flipping": ("PixelFlipping", "curve", {"features_in_step": "auto"}),
    "quantus_region_perturbation": ("RegionPerturbation", "curve", {}),
    "quantus_monotonicity": ("Monotonicity", "scalar", {"features_in_step": "auto"}),
    "quantus_monotonicity_correlation": ("MonotonicityCorrelation", "scalar",
                                         {"features_in_step": "auto", "nr_samples": 10}),
    "quantus_road": ("ROAD", "road", {"percentages": list(range(10, 100, 10))}),
    "quantus_irof": ("IROF", "scalar", {}),
    "quantus_selectivity": ("Selectivity", "curve", {"patch_size": "auto"}),
    "quantus_sufficiency": ("Sufficiency", "scalar", {}),
    "quantus_infidelity": ("Infidelity", "scalar", {"perturb_patch_sizes": "auto", "n_perturb_samples": 10}),
}
AUTO_STEPS = {"MonotonicityCorrelation": 16}  # steps per channel of features_in_step="auto" (default 64)
COMMON_DEFAULTS = {"disable_warnings": True, "display_progressbar": False, "return_aggregate": False}
REDUCTIONS = ("sum", "abs_sum", "none")


def snake_case(name: str) -> str:
    """``PixelFlipping`` -> ``pixel_flipping``, ``ROAD`` -> ``road``, ``IROF`` -> ``irof``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _quantus():
    import quantus  # imported lazily: it takes seconds

    return quantus


def _auto_features_in_step(hw: int, steps: int = 64) -> int:
    target = max(1, -(-hw // steps))
    for d in range(target, hw + 1):
        if hw % d == 0:
            return d
    return hw


def _broadcast_mask_perturb(fn):
    @functools.wraps(fn)
    def perturb(arr, mask, **kwargs):
        return fn(arr=arr, mask=np.broadcast_to(mask, arr.shape), **kwargs)

    return perturb


def _pixel_index_perturb(fn, hw: int):
    @functools.wraps(fn)
    def perturb(arr, indices, **kwargs):
        pix = np.asarray(indices) % hw
        _, first = np.unique(pix, return_index=True)
        return fn(arr=arr, indices=pix[np.sort(first)], **kwargs)

    return perturb


class QuantusMetric(Metric):
    """One Quantus metric class behind ``metric(model, x, attr, target)``; see the module docstring."""

    def __init__(self, metric_name: str, registered_name: str | None = None, reduce_channels: str = "sum",
                 seed: int | None = 0, softmax: bool | None = None, device: str | None = None, mean=None, std=None,
                 max_batch: int | None = None, **quantus_kwargs: Any):
        super().__init__(mean, std, max_batch)
        quantus = _quantus()
        cls = getattr(quantus, metric_name, None)
        if not (inspect.isclass(cls) and hasattr(cls, "evaluate_batch")):
            known = sorted(v[0] for v in QUANTUS_METRICS.values())
            raise ConfigError(f"invalid metric_name={metric_name!r}: a Quantus metric class, e.g. {known}")
        check_choice("reduce_channels", reduce_channels, REDUCTIONS)
        if metric_name == "ROAD" and reduce_channels == "none":
            raise ConfigError("reduce_channels='none' is not supported by quantus ROAD (it imputes pixels): use "
                              "'sum' or 'abs_sum'")
        check_int("seed", seed, allow_none=True)
        if softmax is not None:
            check_bool("softmax", softmax)
        params = inspect.signature(cls.__init__).parameters
        allowed = sorted(p for p in params if p not in ("self", "kwargs", "args"))
        unknown = sorted(set(quantus_kwargs) - set(allowed))
        if unknown:
            raise ConfigError(f"quantus {metric_name} got unknown option(s) {unknown}; allowed: {allowed} plus "
                              f"the adapter's reduce_channels, seed, softmax, device, max_batch, mean, std")
        self.cls = cls
        self.metric_name = metric_name
        self.name = registered_name or f"quantus_{snake_case(metric_name)}"
        defaults = dict(COMMON_DEFAULTS)
        for cname, _, extra in QUANTUS_METRICS.values():
            if cname == metric_name:
                defaults.update(extra)
        self.kwargs = {k: v for k, v in {**defaults, **quantus_kwargs}.items() if k in params}
        self.reduce_channels = reduce_channels
        self.seed = seed
        self.softmax = softmax
        self.device = device

    # -- construction of the Quantus object for one input shape -------------------------------------------
    def quantus_kwargs(self, x_shape) -> dict[str, Any]:
        """The constructor keywords used for inputs of ``x_shape`` ("auto" values resolved)."""
        _, c, h, w = x_shape
        kw = dict(self.kwargs)
        if kw.get("features_in_step") == "auto":
            kw["features_in_step"] = _auto_features_in_step(h * w, AUTO_STEPS.get(self.metric_name, 64))
        if kw.get("patch_size") == "auto":
            kw["patch_size"] = max(8, h // 14)
        if kw.get("perturb_patch_sizes") == "auto":
            kw["perturb_patch_sizes"] = [max(4, h // 8)]
        if c > 1 and self.metric_name == "IROF":
            base = kw.get("perturb_func") or _quantus().baseline_replacement_by_mask
            kw["perturb_func"] = _broadcast_mask_perturb(base)
        if c > 1 and self.metric_name == "ROAD":
            base = kw.get("perturb_func") or _quantus().noisy_linear_imputation
            kw["perturb_func"] = _pixel_index_perturb(base, h * w)
        return kw

    def quantus_inputs(self, x: torch.Tensor, attr: torch.Tensor, target: torch.Tensor):
        """(x_batch, y_batch, a_batch) numpy arrays as handed to Quantus."""
        a = attr.detach().float()
        if a.dim() == 3:
            a = a.unsqueeze(1)
        if self.reduce_channels == "sum":
            a = a.sum(1, keepdim=True)
        elif self.reduce_channels == "abs_sum":
            a = a.abs().sum(1, keepdim=True)
        if self.metric_name == "ROAD" and x.shape[1] > 1:
            a = a.expand(-1, x.shape[1], -1, -1)
        return (x.detach().float().cpu().numpy(), target.detach().cpu().numpy().astype(np.int64),
                np.ascontiguousarray(a.cpu().numpy()))

    def build(self, x_shape):
        return self.cls(**self.quantus_kwargs(x_shape))

    # -- evaluation --------------------------------------------------------------------------------------
    def compute(self, model, x, attr, target):
        if model.training:
            raise ConfigError("quantus metrics need the model in eval mode (call model.eval())")
        finite = torch.isfinite(attr.flatten(1)).all(1) & torch.isfinite(x.flatten(1)).all(1)
        if not bool(finite.all()):  # Quantus would propagate or trip over them: NaN rows, the rest scored
            return self._with_nan_rows(model, x, attr, target, finite)
        x_np, y_np, a_np = self.quantus_inputs(x, attr, target)
        metric = self.build(x.shape)
        if self.metric_name == "ROAD":
            # keep the per-image rows: Quantus's postprocess would replace them by the mean curve over images
            metric.custom_postprocess = lambda **kwargs: None
        call = {"model": model, "x_batch": x_np, "y_batch": y_np, "a_batch": a_np, "channel_first": True,
                    "device": self.device or str(x.device), "batch_size": self.max_batch or len(x_np)}
        if self.softmax is not None:
            call["softmax"] = self.softmax
        state = np.random.get_state() if self.seed is not None else None
        unchanged = _watch_unchanged(metric)
        try:
            if self.seed is not None:
                np.random.seed(self.seed)
            with numpy_trapz(), self._quiet():
                scores = metric(**call)
                out = self._to_outputs(scores, x.device)
        finally:
            if state is not None:
                np.random.set_state(state)
        flags = (unchanged + [False] * len(x))[: len(x)]
        out["unchanged"] = torch.tensor(flags, dtype=torch.float32, device=x.device)
        return out

    @contextlib.contextmanager
    def _quiet(self):
        """Quantus's own console output during a call: its ``logging.info`` notices (on the root logger, one per
        batch) dropped; its warnings re-issued once per metric object, prefixed with the metric's name."""
        root = logging.getLogger()
        drop = _FromQuantus()
        root.addFilter(drop)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                yield
        finally:
            root.removeFilter(drop)
        seen = self.__dict__.setdefault("_warned", set())
        for w in caught:
            text = str(w.message)
            if "quantus" not in str(w.filename):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)  # not Quantus's: as it was
                continue
            if text not in seen:
                seen.add(text)
                warnings.warn(f"metric {self.name!r} (Quantus {self.metric_name}): {text}", w.category, stacklevel=3)

    def _with_nan_rows(self, model, x, attr, target, finite) -> dict[str, torch.Tensor]:
        """Score the images whose input and attribution are finite; the others get NaN (every output key)."""
        nan = float("nan")
        if not bool(finite.any()):
            return {self.name: torch.full((len(x),), nan, device=x.device)}
        part = self.compute(model, x[finite], attr[finite], target[finite])
        out = {}
        for key, val in part.items():
            full = torch.full((len(x), *val.shape[1:]), nan, dtype=val.dtype, device=val.device)
            full[finite.to(val.device)] = val
            out[key] = full
        return out

    def _to_outputs(self, scores, device) -> dict[str, torch.Tensor]:
        from quantus.helpers import utils as qutils

        if self.metric_name == "ROAD" or isinstance(scores, dict):
            if isinstance(scores, dict):
                raise ConfigError(f"quantus {self.metric_name} returned only an aggregate over images")
            curve = np.concatenate([np.asarray(s, dtype=np.float64) for s in scores], axis=0)
            return {self.name: torch.tensor(curve.mean(1), dtype=torch.float32, device=device),
                    f"{self.name}_curve": torch.tensor(curve, dtype=torch.float32, device=device)}
        first = np.asarray(scores[0], dtype=np.float64) if len(scores) else np.zeros(())
        if first.ndim == 0:
            vals = np.asarray([float(s) for s in scores], dtype=np.float64)
            return {self.name: torch.tensor(vals, dtype=torch.float32, device=device)}
        curves = [np.asarray(s, dtype=np.float64) for s in scores]
        length = max(len(c) for c in curves)
        curve = np.full((len(curves), length), np.nan)
        for i, cv in enumerate(curves):
            curve[i, : len(cv)] = cv
        auc = np.asarray([float(qutils.calculate_auc(cv)) for cv in curves])
        return {self.name: torch.tensor(auc, dtype=torch.float32, device=device),
                f"{self.name}_curve": torch.tensor(curve, dtype=torch.float32, device=device)}


#: the start of the warning Quantus issues, per image, when the perturbation left the input as it was
NO_CHANGE = "The settings for perturbing input e.g., 'perturb_func' didn't cause change in input"


def _warned_no_change(caught) -> bool:
    return any(str(w.message).startswith(NO_CHANGE) for w in caught)


def _watch_unchanged(metric) -> list[bool]:
    """Wrap this Quantus object's ``evaluate_batch`` to record, per image, whether Quantus warned that its
    perturbation changed nothing. The warning names no image: a batch that warns is evaluated again image by image
    for the flags alone (scores and NumPy's random state as the batch left them); its warnings go on as issued."""
    flags: list[bool] = []
    batch_fn = metric.evaluate_batch

    def one_by_one(batch: dict, n: int) -> list[bool]:
        state, out = np.random.get_state(), []
        try:
            for i in range(n):
                one = {k: v[i:i + 1] if isinstance(v, np.ndarray) and len(v) == n else v for k, v in batch.items()}
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    batch_fn(**one)
                out.append(_warned_no_change(caught))
        except Exception:  # noqa: BLE001 - a metric that cannot take one image: the whole batch is flagged
            out = [True] * n
        finally:
            np.random.set_state(state)
        return out

    def evaluate_batch(**batch):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = batch_fn(**batch)
        n = len(batch["x_batch"])
        hit = _warned_no_change(caught)
        flags.extend(one_by_one(batch, n) if hit and n > 1 else [hit] * n)
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return result

    metric.evaluate_batch = evaluate_batch
    return flags


class _FromQuantus(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "quantus" not in str(record.pathname)


def _make_factory(registered: str, class_name: str):
    def factory(**options):
        if "metric_name" in options:
            raise ConfigError(f"{registered} is fixed to Quantus {class_name}; use 'quantus' with metric_name=")
        return QuantusMetric(class_name, registered_name=registered, **options)

    factory.__name__ = registered
    factory.__doc__ = f"Quantus ``{class_name}`` through :class:`QuantusMetric` (see the module docstring)."
    return factory


#: which way each adapter's score is better ("max": higher)
QUANTUS_DIRECTIONS = {
    "quantus_faithfulness_correlation": "max", "quantus_faithfulness_estimate": "max",
    "quantus_pixel_flipping": "min",  # AUC of the class score while the most relevant features are removed
    "quantus_region_perturbation": "max",  # AOPC-style drop of the score: larger = more faithful
    "quantus_monotonicity": "max", "quantus_monotonicity_correlation": "max",
    "quantus_road": "min",  # MoRF accuracy curve under noisy linear imputation
    "quantus_irof": "max",  # area over the curve
    "quantus_selectivity": "min", "quantus_sufficiency": "max", "quantus_infidelity": "min",
}

for _name, (_cls, _, _) in QUANTUS_METRICS.items():
    register_metric(_name, columns=((_name, _cls, QUANTUS_DIRECTIONS[_name]),))(_make_factory(_name, _cls))


@register_metric("quantus")
def quantus_metric(metric_name: str = "PixelFlipping", **options) -> QuantusMetric:
    """Any Quantus metric class by name, e.g. ``build_metric("quantus", metric_name="ROAD")``; outputs are keyed
    ``quantus_<snake_case(metric_name)>``."""
    return QuantusMetric(metric_name, **options)


__all__ = ["QUANTUS_DIRECTIONS", "QUANTUS_METRICS", "QuantusMetric", "snake_case"]
