"""Sanity checks by randomisation: does the map change when what it should explain is destroyed?

Each re-runs the method (``metric(model, x, attr, target, method=m)``, see :mod:`._rerun`) and follows Quantus 0.6's
definition (``quantus.MPRT``, ``SmoothMPRT``, ``EfficientMPRT``, ``RandomLogit``: same defaults, same layer order,
same parameter draws), batched over the images on the device; the tests check each equal to its Quantus class.

Model randomisation (:func:`randomised_models`, as Quantus's ``get_random_layer_generator``): the layers are the
modules with ``reset_parameters`` (convolutions, linear layers, norms) in ``named_modules`` order; a deep copy of the
model is randomised (the user's model is never touched), layer by layer, each by ``reset_parameters()`` after
``torch.manual_seed(seed + 1)`` (the caller's RNG state is restored afterwards). ``layer_order``: "top_down"
(cascading from the output, Adebayo et al.), "bottom_up" (cascading from the input) or "independent" (one layer at
a time, the others at their trained values).

- ``mprt`` (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018): per randomisation step l,
  rho_l = spearman(|a| / max|a|, |a_l| / max|a_l|), a the given map, a_l the map of the model randomised up to
  layer l. Outputs ``mprt`` = rho after the last step (Quantus ``return_last_correlation``; for a cascading order
  the fully randomised model), ``mprt_average`` = the mean over the steps, ``mprt_curve`` [B, steps] (not with
  ``skip_layers``).
  Cost: one method call per layer (``skip_layers=True``: one, on the fully randomised model).
- ``smooth_mprt`` (Hedström et al., "Sanity Checks Revisited", TMLR 2024): the same with every map (the reference
  included) denoised, a_smooth = (1/N) sum_n a(x + eps_n), eps_n ~ N(0, (noise_magnitude (max x - min x))^2),
  eps_N = 0, normalised by the root mean square. The reference is the smoothed map of the unchanged model
  (Quantus with ``a_batch=None``). Cost: N calls per layer plus N for the reference.
- ``efficient_mprt`` (eMPRT, Hedström et al. 2024): the relative rise of the map's discrete entropy (100 equal bins)
  when the model is fully randomised: (H(a_rand) - H(a)) / H(a); higher is better. The map of the unchanged model is
  the given one (Quantus recomputes it: the same map for a deterministic method). Cost: one call.
- ``random_logit`` (Sixt et al., "When Explanations Lie", ICML 2020): ssim(a / max|a|, a_off / max|a_off|), a_off
  the map for a random other class (uniform over the classes != target). Cost: one call.

Normalisation is per image (Quantus's default divides by the batch's maximum; equal at batch size 1, and equal to
Quantus given ``normalise_func_kwargs={"normalise_axes": (1, 2, 3)}``). Lower similarity is better (the map depends
on the model and the class); benchmarks.report.sanity states the pass rule the tables apply. The ``random``
control draws its map from the image alone (seeded by its values), so it is the same map on the randomised model:
similarity 1, and it fails, as a map that ignores the model should. A map of fresh noise on each call would score
near 0 on MPRT and random logit - the blind spot of similarity checks that Hedström et al. point out - while eMPRT
still fails it (the entropy of noise cannot rise).

``original=True`` also recomputes the map of the unchanged model and reports its similarity to the reference
(``<name>_original``, Quantus's ``"original"`` entry; one more call, N for smooth MPRT): how reproducible the method
is. Quantus's ``return_average_correlation`` averages that entry in with the layers (it skips a key "orig" that
is named "original"); ``<name>_average`` is the mean over the randomisation steps only.
"""
from __future__ import annotations

import copy

import torch

from ..engine.seeding import randint_per_image
from ..errors import ConfigError, check_bool, check_choice, check_int, check_real
from ._rerun import MethodMetric, draw_noise, reduce_map
from ._similarity import discrete_entropy, normalise_by_max, normalise_by_second_moment, similarity
from .base import register_metric

LAYER_ORDERS = ("top_down", "bottom_up", "independent")


def randomisable_layers(model) -> list[str]:
    """Names of the modules a randomisation resets, in ``named_modules`` order (Quantus's layers)."""
    return [n for n, m in model.named_modules() if hasattr(m, "reset_parameters")]


def randomised_models(model, order: str = "top_down", seed: int = 42):
    """Yield (layer name, model) for every randomisation step: a deep copy of ``model`` (never ``model`` itself)
    with that layer reset (and, cascading, every layer before it in ``order``); the same object every step."""
    check_choice("layer_order", order, LAYER_ORDERS)
    rand = copy.deepcopy(model)
    original = {k: v.detach().clone() for k, v in rand.state_dict().items()}
    modules = [(n, m) for n, m in rand.named_modules() if hasattr(m, "reset_parameters")]
    if order == "top_down":
        modules = modules[::-1]
    cuda = sorted({t.device.index or 0 for t in original.values() if t.is_cuda})
    for name, module in modules:
        if order == "independent":
            rand.load_state_dict(original)
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed + 1)
            module.reset_parameters()
        yield name, rand


def off_class_draws(x: torch.Tensor, high: int, seed: int) -> torch.Tensor:
    """[B] integers in [0, high), per image (seeded by the image's pixels: the same whatever its batch)."""
    return randint_per_image(x, 1, high, seed)[:, 0]


class _Randomisation(MethodMetric):
    """MPRT and smooth MPRT: the similarity of the reference map to the maps of the randomised models."""

    smooth = False

    def __init__(self, layer_order: str, similarity_func: str = "spearman", skip_layers: bool = False,
                 abs: bool = True, normalise: bool = True, original: bool = False, seed: int = 42,
                 reduce_channels: str = "sum", subsample: float = 1.0, mean=None, std=None):
        super().__init__(reduce_channels, subsample, seed, mean, std)
        self.layer_order = check_choice("layer_order", layer_order, LAYER_ORDERS)
        self.similarity = similarity(similarity_func)
        self.skip_layers = check_bool("skip_layers", skip_layers)
        self.abs = check_bool("abs", abs)
        self.normalise = check_bool("normalise", normalise)
        self.original = check_bool("original", original)

    def prepare(self, a: torch.Tensor) -> torch.Tensor:
        if self.normalise:
            a = (normalise_by_second_moment if self.smooth else normalise_by_max)(a)
        return a.abs() if self.abs else a

    def maps(self, method, model, x, target, stream: int) -> torch.Tensor:
        return self.prepare(self.explain(method, model, x, target))

    def reference(self, method, model, x, attr, target) -> torch.Tensor:
        return self.prepare(reduce_map(attr, self.reduce_channels))

    def compute(self, model, x, attr, target, method):
        ref = self.reference(method, model, x, attr, target)
        out, stream = {}, 1
        if self.original:
            out[f"{self.name}_original"] = self.similarity(ref, self.maps(method, model, x, target, stream))
            stream += 1
        steps = randomised_models(model, self.layer_order, self.seed)
        n_layers = len(randomisable_layers(model))
        if n_layers == 0:
            raise ConfigError(f"metric {self.name!r}: the model has no layer with reset_parameters to randomise")
        rho = []
        for l_ix, (_, rand) in enumerate(steps):
            if self.skip_layers and l_ix + 1 < n_layers:
                continue
            rho.append(self.similarity(ref, self.maps(method, rand, x, target, stream)))
            stream += 1
        curve = torch.stack(rho, 1).float()
        out[self.name] = curve[:, -1]
        out[f"{self.name}_average"] = curve.mean(1)
        if curve.shape[1] > 1:  # the layer-by-layer curve (the report draws it over the fraction of steps)
            out[f"{self.name}_curve"] = curve
        if self.original:
            out[f"{self.name}_original"] = out[f"{self.name}_original"].float()
        return out


@register_metric("mprt", columns=(("mprt", "MPRT", "min"), ("mprt_average", "MPRT avg", "min")))
class MPRT(_Randomisation):
    """Model parameter randomisation test (Adebayo et al., 2018) as Quantus ``MPRT``; see the module docstring.

    Options (Quantus's defaults): ``layer_order`` "top_down", ``similarity_func`` "spearman" | "ssim",
    ``skip_layers`` False, ``abs`` True, ``normalise`` True (by the maximum), ``seed`` 42, ``original`` False."""

    name = "mprt"

    def __init__(self, layer_order: str = "top_down", **kwargs):
        super().__init__(layer_order, **kwargs)


@register_metric("smooth_mprt", columns=(("smooth_mprt", "sMPRT", "min"),
                                         ("smooth_mprt_average", "sMPRT avg", "min")))
class SmoothMPRT(_Randomisation):
    """Smooth MPRT (Hedström et al., 2024) as Quantus ``SmoothMPRT``; see the module docstring.

    Options (Quantus's defaults): ``layer_order`` "bottom_up", ``nr_samples`` 50, ``noise_magnitude`` 0.1,
    ``similarity_func`` "spearman" | "ssim", ``skip_layers`` False, ``abs`` True, ``normalise`` True (by the root mean
    square), ``seed`` 42 (the parameters' and the noise's), ``original`` False."""

    name = "smooth_mprt"
    smooth = True

    def __init__(self, layer_order: str = "bottom_up", nr_samples: int = 50, noise_magnitude: float = 0.1,
                 **kwargs):
        super().__init__(layer_order, **kwargs)
        self.nr_samples = check_int("nr_samples", nr_samples, 1)
        self.noise_magnitude = check_real("noise_magnitude", noise_magnitude, 0.0)

    def reference(self, method, model, x, attr, target):
        return self.maps(method, model, x, target, 0)

    def maps(self, method, model, x, target, stream):
        """(1/N) sum_n a(x + eps_n), eps_{N-1} = 0 (Quantus: so that N = 1 is the plain map)."""
        n = self.nr_samples
        dims = tuple(range(1, x.dim()))
        std = self.noise_magnitude * (x.amax(dims, keepdim=True) - x.amin(dims, keepdim=True))

        def draw(s0, s1):
            eps = draw_noise(x, s0, min(s1, n - 1), self.seed, stream, "normal", 0.0, 1.0) * std
            if s1 == n:  # the last copy is the image itself
                eps = torch.cat([eps, torch.zeros_like(x)[None]])
            return x[None] + eps

        total = None
        for _, _, m in self.noisy_maps(method, model, x, target, n, draw):
            part = (m / n).sum(0)
            total = part if total is None else total + part
        return self.prepare(total)


@register_metric("efficient_mprt", columns=(("efficient_mprt", "eMPRT", "max"),))
class EfficientMPRT(MethodMetric):
    """Efficient MPRT (Hedström et al., 2024) as Quantus ``EfficientMPRT``: (H(a_rand) - H(a)) / H(a), H the
    discrete entropy with ``n_bins`` bins, a_rand the map of the model after the last randomisation step.

    Options (Quantus's defaults): ``layer_order`` "bottom_up" (cascading: the last step is the fully randomised
    model), ``n_bins`` 100, ``abs`` False, ``normalise`` False (by the root mean square), ``seed`` 42."""

    name = "efficient_mprt"

    def __init__(self, layer_order: str = "bottom_up", n_bins: int = 100, abs: bool = False,
                 normalise: bool = False, seed: int = 42, reduce_channels: str = "sum", subsample: float = 1.0,
                 mean=None, std=None):
        super().__init__(reduce_channels, subsample, seed, mean, std)
        self.layer_order = check_choice("layer_order", layer_order, LAYER_ORDERS)
        self.n_bins = check_int("n_bins", n_bins, 1)
        self.abs = check_bool("abs", abs)
        self.normalise = check_bool("normalise", normalise)

    def prepare(self, a):
        a = normalise_by_second_moment(a) if self.normalise else a
        return a.abs() if self.abs else a

    def compute(self, model, x, attr, target, method):
        if not randomisable_layers(model):
            raise ConfigError(f"metric {self.name!r}: the model has no layer with reset_parameters to randomise")
        # randomisation is cheap: every step is taken, only the last step's model is explained
        *_, (_, rand) = randomised_models(model, self.layer_order, self.seed)
        h0 = discrete_entropy(self.prepare(reduce_map(attr, self.reduce_channels)), self.n_bins)
        h1 = discrete_entropy(self.prepare(self.explain(method, rand, x, target)), self.n_bins)
        return {self.name: ((h1 - h0) / h0).float(), f"{self.name}_entropy": h0.float(),
                f"{self.name}_entropy_random": h1.float()}


@register_metric("random_logit", columns=(("random_logit", "RandLogit", "min"),))
class RandomLogit(MethodMetric):
    """Random logit test (Sixt et al., 2020) as Quantus ``RandomLogit``: similarity of the map to the map for a
    random other class; see the module docstring.

    Options (Quantus's defaults): ``similarity_func`` "ssim" | "spearman", ``num_classes`` (None: the model's
    output size; Quantus's default 1000), ``abs`` False, ``normalise`` True (by the maximum), ``seed`` 42."""

    name = "random_logit"

    def __init__(self, similarity_func: str = "ssim", num_classes: int | None = None, abs: bool = False,
                 normalise: bool = True, seed: int = 42, reduce_channels: str = "sum", subsample: float = 1.0,
                 mean=None, std=None):
        super().__init__(reduce_channels, subsample, seed, mean, std)
        self.similarity = similarity(similarity_func)
        self.num_classes = check_int("num_classes", num_classes, 2, allow_none=True)
        self.abs = check_bool("abs", abs)
        self.normalise = check_bool("normalise", normalise)

    def prepare(self, a):
        a = normalise_by_max(a) if self.normalise else a
        return a.abs() if self.abs else a

    def compute(self, model, x, attr, target, method):
        k = self.num_classes
        if k is None:
            with torch.no_grad():
                k = int(model(x[:1]).shape[-1])
        if int(target.max()) >= k:
            raise ConfigError(f"random_logit: target {int(target.max())} >= num_classes={k}: set num_classes")
        r = off_class_draws(x, k - 1, self.seed).to(target.device).long()
        off = r + (r >= target).long()  # the r-th class among those != target
        a_off = self.prepare(self.explain(method, model, x, off))
        ref = self.prepare(reduce_map(attr, self.reduce_channels))
        return {self.name: self.similarity(ref, a_off).float(), f"{self.name}_class": off.float()}


__all__ = ["EfficientMPRT", "LAYER_ORDERS", "MPRT", "RandomLogit", "SmoothMPRT", "off_class_draws",
           "randomisable_layers", "randomised_models"]
