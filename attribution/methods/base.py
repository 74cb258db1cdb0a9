"""Base class of every attribution method: shared options, input checks, the result record."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..engine.gradients import GradientEvaluator
from ..engine.integrate import completeness_error
from ..engine.normalize import BASELINES, Normalizer, resolve_baseline
from ..errors import ConfigError, check_choice, check_int
from ..registry import MethodInfo, Registry


def _method_info(name: str, factory, *, display: str | None = None, latex: str | None = None,
                 order: float = 50.0, needs_bank: bool = False, aliases: tuple = ()) -> MethodInfo:
    return MethodInfo(name=name, display=display or name, latex=latex or display or name, order=float(order),
                      needs_vae=bool(getattr(factory, "needs_vae", False)), needs_bank=needs_bank,
                      is_path=bool(getattr(factory, "is_path", False)), aliases=tuple(a.lower() for a in aliases),
                      factory=factory)


METHODS = Registry("method", _method_info)


def register_method(name: str, *, display: str | None = None, latex: str | None = None, order: float = 50.0,
                    needs_bank: bool = False, aliases: tuple = ()):
    """Register a method class under its config name, with its facts (see :class:`attribution.registry.MethodInfo`):
    ``display`` (table label), ``latex``, ``order`` (row among the papers' methods; 50 = after them),
    ``needs_bank`` (takes a reference bank of dataset images), ``aliases`` (spellings in published tables).
    ``needs_vae`` and ``is_path`` are read from the class."""
    return METHODS.register(name, display=display, latex=latex, order=order, needs_bank=needs_bank, aliases=aliases)


@dataclass
class Attribution:
    """What a method returns: attributions [B,C,H,W] plus, for path methods, f at the path's two ends.

    ``completeness`` is |sum(attr) - (f_end - f_start)| / |f_end - f_start| per image (None for non-path methods).
    """

    attr: torch.Tensor
    f_start: torch.Tensor | None = None
    f_end: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def completeness(self) -> torch.Tensor | None:
        if self.f_start is None or self.f_end is None:
            return None
        return completeness_error(self.attr, self.f_end, self.f_start)


class AttributionMethod:
    """What every method has: ``objective`` ("prob" | "logit"), ``max_batch`` (rows per forward/backward chunk),
    ``mean``/``std`` (the classifier's input normalisation; omitted = identity), ``autocast`` (False | "bf16" |
    "fp16"). A subclass declares only its own options and passes ``**kwargs`` on.

    Call as ``method(model, x, target)`` -> [B,C,H,W] float32 on x.device, or ``method.attribute(...)``
    for the full :class:`Attribution` record.
    """

    name: str = "?"
    is_path: bool = False  # whether completeness is defined (sum attr = f(end) - f(start))
    needs_vae: bool = False

    def __init__(self, objective: str = "prob", max_batch: int | None = None, mean=None, std=None,
                 autocast=False):
        self.norm = Normalizer(mean, std)
        self.evaluator = GradientEvaluator(objective, max_batch, autocast)
        self.objective = objective

    # -- public ---------------------------------------------------------------------------------------
    def __call__(self, model, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.attribute(model, x, target).attr

    def attribute(self, model, x: torch.Tensor, target: torch.Tensor) -> Attribution:
        x, target = self._check_inputs(x, target)
        out = self._attribute(model, x, target)
        out.attr = out.attr.float()
        return out

    def cost(self, height: int = 256, width: int = 256) -> dict[str, float]:
        """Documented classifier passes per image: {"fb": forward+backward rows, "f": forward-only rows}."""
        raise NotImplementedError

    # -- helpers for subclasses --------------------------------------------------------------------------
    def _attribute(self, model, x, target) -> Attribution:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _check_inputs(x, target):
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
            raise ConfigError(f"x must be a float tensor [B,C,H,W]; got "
                              f"{type(x).__name__} {tuple(getattr(x, 'shape', ()))}")
        target = torch.as_tensor(target, device=x.device)
        if target.dim() == 0:
            target = target.expand(x.shape[0])
        if target.shape != (x.shape[0],) or target.is_floating_point():
            raise ConfigError(f"target must be an integer tensor [B] with B={x.shape[0]}; got "
                              f"{target.dtype} {tuple(target.shape)}")
        return x.float().detach(), target.long()

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


def check_baseline(baseline):
    """A baseline name ("black" | "mean" | "blur" | "zero") or a tensor."""
    if not isinstance(baseline, torch.Tensor):
        check_choice("baseline", baseline, BASELINES + ("zero",), allowed=f"choose one of {list(BASELINES)} or "
                                                                            f"pass a tensor")
    return baseline


class PathMethod(AttributionMethod):
    """A method that integrates gradients along a path of ``n_steps`` points from a ``baseline`` ("black" |
    "mean" | "blur" | a tensor, mapped through the normalisation) to the input; completeness is defined."""

    is_path = True

    def __init__(self, n_steps: int = 200, baseline="black", **kwargs):
        super().__init__(**kwargs)
        self.n_steps = check_int("n_steps", n_steps, 2)
        self.baseline = check_baseline(baseline)

    def baseline_for(self, x: torch.Tensor) -> torch.Tensor:
        return resolve_baseline(x, self.baseline, self.norm)

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r}, n_steps={self.n_steps})"
