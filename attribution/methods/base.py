"""Base class of every attribution method: shared options, input checks, the result record."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..engine.gradients import GradientEvaluator
from ..engine.integrate import check_integration, completeness_error, integrate_path, integrate_rule
from ..engine.normalize import BASELINES, Normalizer, resolve_baseline
from ..engine.rules import check_rule, check_spacing, rule_forwards
from ..engine.seeding import randint_per_image
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


def check_references(references: torch.Tensor | None) -> torch.Tensor | None:
    """A reference bank (IG2, Expected Gradients): a non-empty float tensor [M,C,H,W] in the classifier's input space,
    returned detached in float32 (None stays None)."""
    if references is None:
        return None
    if (not isinstance(references, torch.Tensor) or references.dim() != 4 or not references.is_floating_point()
            or len(references) == 0):
        raise ConfigError(f"references must be a non-empty float tensor [M,C,H,W]; got {type(references).__name__} "
                          f"{tuple(getattr(references, 'shape', ()))}")
    return references.detach().float()


def check_baseline(baseline):
    """A baseline name ("black" | "mean" | "blur" | "zero" | "expected") or a tensor."""
    if not isinstance(baseline, torch.Tensor):
        check_choice("baseline", baseline, BASELINES + ("zero", "expected"),
                     allowed=f"choose one of {list(BASELINES) + ['expected']} (expected: Expected Gradients, baselines "
                             f"drawn from a reference bank) or pass a tensor")
    return baseline


#: why a path built step by step from gradients (Guided IG, MA-GIG) or relaxed (Manifold IG) takes no quadrature rule
STEERED_PATH = {k: "its path is not a fixed function of alpha (it is built from the gradients along the way), so "
                   "only its own sum along the stored points applies; rule and spacing are for ig, blur_ig, sig, eig"
                for k in ("rule", "spacing")}


class PathMethod(AttributionMethod):
    """A method that integrates gradients along a path of ``n_steps`` points from a ``baseline`` to the input;
    completeness is defined.

    Shared options (composable with every path):

    - ``baseline``: "black" | "mean" | "blur" | a tensor (mapped through the normalisation), or ``"expected"``:
      Expected Gradients (Erion et al., Nature Machine Intelligence 2021): per image, ``n_samples`` baselines b_s
      drawn (seeded by ``seed`` and the image itself) from the reference bank (:meth:`set_references`; the harness
      passes its bank); attr = (1/n) sum_s attr(x; b_s), each path run in full from its own baseline, batched as
      B x n images (IG itself uses Erion's one-point estimator: :mod:`attribution.methods.ig`).
      f_start is then the mean of f at the path starts, so a complete path stays complete.
    - ``integration``: "path" (sum of gradient x step, the papers') or "idgi" (Important Direction Gradient
      Integration; :mod:`attribution.engine.integrate`).
    """

    is_path = True

    def __init__(self, n_steps: int = 200, baseline="black", integration: str = "path", n_samples: int = 16,
                 seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.n_steps = check_int("n_steps", n_steps, 2)
        self.baseline = check_baseline(baseline)
        self.integration = check_integration(integration)
        self.n_samples = check_int("n_samples", n_samples, 1, allowed="an integer >= 1 (Expected Gradients' baselines "
                                                                      "per image)")
        self.seed = check_int("seed", seed)
        self.references = None
        self._baseline_rows = None  # per-row baselines while Expected Gradients runs the path

    @property
    def expected(self) -> bool:
        return isinstance(self.baseline, str) and self.baseline == "expected"

    @property
    def needs_references(self) -> bool:
        """Whether the method needs :meth:`set_references` (Expected Gradients draws its baselines from the bank)."""
        return self.expected

    def set_references(self, references: torch.Tensor | None) -> None:
        """The reference bank of Expected Gradients: [M,C,H,W] float images in the classifier's input space."""
        self.references = check_references(references)

    def baseline_for(self, x: torch.Tensor) -> torch.Tensor:
        if self._baseline_rows is not None:
            return self._baseline_rows
        return resolve_baseline(x, self.baseline, self.norm)

    # -- Expected Gradients --------------------------------------------------------------------------------
    def attribute(self, model, x: torch.Tensor, target: torch.Tensor) -> Attribution:
        if not self.expected:
            return super().attribute(model, x, target)
        x, target = self._check_inputs(x, target)
        out = self._expected(model, x, target, self.draw_baselines(x))
        out.attr = out.attr.float()
        return out

    def draw_baselines(self, x: torch.Tensor) -> torch.Tensor:
        """Expected Gradients' baselines [B, n_samples, C, H, W]: bank images drawn per image (with replacement)."""
        bank = self.references
        if bank is None:
            raise ConfigError(f"{self.name} with baseline='expected' draws its baselines from a reference bank: call "
                              f"method.set_references(images [M,C,H,W]) (the harness passes its bank, sized by "
                              f"reference_bank=...)")
        if bank.shape[1:] != x.shape[1:]:
            raise ConfigError(f"the reference bank's images are {tuple(bank.shape[1:])} but the inputs are "
                              f"{tuple(x.shape[1:])}: build the bank from the same dataset and preprocessing")
        idx = randint_per_image(x, self.n_samples, len(bank), self.seed)
        return bank.to(x.device)[idx]

    def _expected(self, model, x, target, baselines) -> Attribution:
        """The mean over the sampled baselines of the full path attribution, as B x n images in one batch."""
        b, n = x.shape[0], baselines.shape[1]
        self._baseline_rows = baselines.reshape(b * n, *x.shape[1:])
        try:
            out = self._attribute(model, x.repeat_interleave(n, 0), target.repeat_interleave(n))
        finally:
            self._baseline_rows = None
        mean = lambda t: None if t is None else t.reshape(b, n, *t.shape[1:]).mean(1)  # noqa: E731
        return Attribution(mean(out.attr), mean(out.f_start), mean(out.f_end))

    def cost(self, height: int = 256, width: int = 256) -> dict[str, float]:
        """One path's cost (:meth:`one_path_cost`), times ``n_samples`` with Expected Gradients."""
        cost = self.one_path_cost(height, width)
        return {k: v * self.n_samples for k, v in cost.items()} if self.expected else cost

    def one_path_cost(self, height: int = 256, width: int = 256) -> dict[str, float]:
        """Passes per image of one path: :meth:`path_cost`, as the subclass documents it."""
        return self.path_cost(height, width)

    def path_cost(self, height: int = 256, width: int = 256) -> dict[str, float]:
        """Documented passes per image of one path."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r}, n_steps={self.n_steps})"


class FixedPathMethod(PathMethod):
    """A path method whose path is a fixed function p(alpha), alpha in [0, 1], of the input and the baseline (IG,
    Blur IG, SIG, EIG), so that the integral can use any quadrature rule (:mod:`attribution.engine.rules`):

    - ``rule``: "left" (the papers' left Riemann sum, default), "right", "middle", "trapezoid", "gausslegendre";
    - ``spacing``: "uniform" (default) or "adaptive" (Integrated Decision Gradients' adaptive sampling: steps go where
      f changes fastest, found by forward-only probes).

    Every rule takes the default grid's number of gradient evaluations (:meth:`evaluations`). A subclass implements
    :meth:`path_points` -> (``points(start, stop)`` on the default grid, ``points_at(alphas [B, S])``).
    """

    def __init__(self, rule: str = "left", spacing: str = "uniform", **kwargs):
        super().__init__(**kwargs)
        self.rule = check_rule(rule)
        self.spacing = check_spacing(spacing)
        if self.rule == "gausslegendre" and self.spacing != "uniform":
            raise ConfigError("rule='gausslegendre' places its own nodes: it takes spacing='uniform' only")
        if self.integration == "idgi" and self.rule != "left":
            raise ConfigError(f"integration='idgi' weighs each segment's f difference by the gradient at its start: "
                              f"it takes rule='left' only (got rule={self.rule!r}; spacing={self.spacing!r} is fine)")
        if self.rule == "trapezoid" and self.evaluations() < 2:
            raise ConfigError("rule='trapezoid' needs two gradient evaluations: raise n_steps")

    def evaluations(self) -> int:
        """Gradient evaluations per path on the default grid (every rule gets the same budget)."""
        return self.n_steps - 1

    @property
    def default_grid(self) -> bool:
        return self.rule == "left" and self.spacing == "uniform"

    def path_points(self, x: torch.Tensor):  # pragma: no cover - abstract
        raise NotImplementedError

    def integrate(self, model, x, target, points, points_at, n_points: int):
        """(attr, f_start, f_end) along the path: the default grid through ``points``, other rules through
        ``points_at``."""
        kw = dict(batch=x.shape[0], row_shape=x.shape[1:], integration=self.integration)
        if self.default_grid:
            return integrate_path(model, points, n_points, target, self.evaluator, **kw)
        return integrate_rule(model, points_at, self.rule, self.spacing, self.evaluations(), target,
                              self.evaluator, **kw)

    def one_path_cost(self, height: int = 256, width: int = 256) -> dict[str, float]:
        cost = dict(self.path_cost(height, width))
        if not self.default_grid:  # same gradient budget; forwards of the rule (endpoints, probes)
            cost["fb"] = self.evaluations()
            cost["f"] = rule_forwards(self.rule, self.spacing, self.evaluations())
        return cost
