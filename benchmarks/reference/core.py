"""What every reference algorithm shares: the target score, one gradient at batch 1, the authors' ``compute_ig``,
their normalisation, lerp / slerp, their ``.backward()`` habit, and an optional clock for the speed benchmark.

Everything here works on ONE image ([C,H,W], or [1,C,H,W] where the authors pass ``x[None]``) and one integer target,
as the authors' DiffID runs do (batch 1; docs/upstream_methods.md section 1.3 and the "per-image loop" notes of
section 2). Nothing is batched across path points or images on purpose: these functions are the oracle the batched
library is tested against, and the "authors' way" the speed benchmark times.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence

import torch


# -- the objective ------------------------------------------------------------------------------------------------
def score(logits: torch.Tensor, target: int, objective: str = "prob") -> torch.Tensor:
    """softmax(logits)[target] (``exp_obj: prob``, every config) or the raw logit (an unused option); section 1.2.
    logits [1,K] -> a 0-d tensor."""
    if objective == "logit":
        return logits[0, int(target)]
    return torch.softmax(logits, dim=-1)[0, int(target)]


def grad_at(model, point: torch.Tensor, target, objective: str = "prob") -> torch.Tensor:
    """One classifier forward+backward on a batch of one point [1,C,H,W] (upstream ``get_grads``, one step)."""
    xr = point.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(score(model(xr), target, objective), xr)
    return g.detach()


def compute_ig(model, path: torch.Tensor, target, objective: str = "prob") -> torch.Tensor:
    """Upstream ``compute_ig`` for one image (section 1.3): path [P,C,H,W] -> [C,H,W].

    The authors take a gradient at *every* point, one point per forward+backward, the last one included although it
    is never used (section 9.11), then the left Riemann sum sum_k grad f(p_k) * (p_{k+1} - p_k): each gradient is
    taken at the segment's end nearer the baseline."""
    grads = torch.cat([grad_at(model, path[k:k + 1], target, objective) for k in range(path.shape[0])])
    return (grads[:-1] * (path[1:] - path[:-1])).sum(0)


# -- normalisation (section 1.1) ----------------------------------------------------------------------------------
def _stats(x: torch.Tensor, mean, std):
    shape = (1,) * (x.dim() - 3) + (x.shape[-3], 1, 1)
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(shape)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(shape)
    return m, s


def preprocess(pixels: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None):
    """(x - mean_c) / std_c; identity when ``mean`` is None (a model that takes [0,1] pixels)."""
    if mean is None:
        return pixels
    m, s = _stats(pixels, mean, std)
    return (pixels - m) / s


def undo_preprocess(x: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None):
    """x * std_c + mean_c; identity when ``mean`` is None."""
    if mean is None:
        return x
    m, s = _stats(x, mean, std)
    return x * s + m


def black(x: torch.Tensor, mean=None, std=None) -> torch.Tensor:
    """The authors' "zero" baseline: preprocess(zeros), a black image mapped through the normalisation (1.1)."""
    return preprocess(torch.zeros_like(x), mean, std)


# -- partial moves of the guided paths (sections 2.4, 2.5) ----------------------------------------------------------
def lerp(t, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a + t * (b - a)


def slerp(t, low: torch.Tensor, high: torch.Tensor, dot_threshold: float = 0.9995) -> torch.Tensor:
    """The MA-GIG authors' ``slerp`` of two vectors treated as one flat vector each (section 2.5): no norm
    interpolation; falls back to lerp when a norm is < 1e-9 or |cos| > ``dot_threshold``."""
    a, b = low.reshape(-1).float(), high.reshape(-1).float()
    n0, n1 = a.norm(), b.norm()
    if n0 < 1e-9 or n1 < 1e-9:
        return lerp(t, low, high)
    dot = ((a / n0) * (b / n1)).sum().clamp(-1.0, 1.0)
    if dot.abs() > dot_threshold:
        return lerp(t, low, high)
    theta = torch.acos(dot)
    return torch.sin(theta - theta * t) / torch.sin(theta) * low + torch.sin(theta * t) / torch.sin(theta) * high


# -- the authors' .backward() (section 9.9) -----------------------------------------------------------------------
@contextlib.contextmanager
def parameters_require_grad(model):
    """Upstream classifiers are not frozen: AGI's and IG2's ``.backward()`` calls also form parameter gradients
    (section 9.9). Inside, every parameter requires grad, as upstream; on exit their flags and ``.grad`` are put
    back, so a caller's model is left as it was."""
    params = list(model.parameters())
    saved = [(p.requires_grad, p.grad) for p in params]
    for p in params:
        p.requires_grad_(True)
        p.grad = None
    try:
        yield
    finally:
        for p, (req, grad) in zip(params, saved):
            p.requires_grad_(req)
            p.grad = grad


def input_grad(out: torch.Tensor, inp: torch.Tensor, retain_graph: bool = False) -> torch.Tensor:
    """``out.backward()`` and read (then clear) ``inp.grad``, as upstream does instead of ``autograd.grad``."""
    out.backward(retain_graph=retain_graph)
    g = inp.grad.detach().clone()
    inp.grad = None
    return g


# -- timing hooks for the speed benchmark ---------------------------------------------------------------------------
class Clock:
    """Wall time per named phase of a reference run, synchronised on the device before and after each phase, and
    how many units (steps, points, etas) each phase covered; ``extrapolate`` scales a partial run up."""

    def __init__(self, sync: Callable[[], None] = lambda: None):
        self.sync = sync
        self.sec: dict[str, float] = {}
        self.done: dict[str, int] = {}

    @contextlib.contextmanager
    def phase(self, name: str, units: int = 1):
        self.sync()
        t = time.perf_counter()
        try:
            yield
        finally:
            self.sync()
            self.sec[name] = self.sec.get(name, 0.0) + time.perf_counter() - t
            self.done[name] = self.done.get(name, 0) + units

    def count(self, name: str, units: int):
        """Add ``units`` to a phase whose count is known only afterwards (MIG's etas)."""
        self.done[name] = self.done.get(name, 0) + units

    def total(self) -> float:
        return sum(self.sec.values())

    def extrapolate(self, totals: dict[str, float]) -> float:
        """sum over phases of measured seconds x (total units / measured units); phases absent from ``totals``
        are counted as measured (fixed set-up cost)."""
        out = 0.0
        for name, sec in self.sec.items():
            done = max(1, self.done.get(name, 1))
            out += sec * (totals[name] / done if name in totals else 1.0)
        return out


class _NoClock:
    def phase(self, name: str, units: int = 1):
        return contextlib.nullcontext()

    def count(self, name: str, units: int):
        pass


NO_CLOCK = _NoClock()
