"""Batched gradients of the objective with respect to the input, chunked to fit memory.

Rows of any stack of inputs are evaluated in chunks of at most ``max_batch`` rows through the library's one
chunking loop (:class:`attribution.engine.chunking.Chunker`): on CUDA out-of-memory the chunk is halved and
retried, so long runs keep going.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from .chunking import Chunked, Chunker, autocast_context, check_autocast
from .objective import check_objective, target_score

__all__ = ["GradientEvaluator", "PassCounter"]


class PassCounter:
    """Counts rows the model sees: forward+backward rows (grad enabled) and forward-only rows.

    Use as a context manager around any attribution or metric call::

        with PassCounter(model) as pc:
            method(model, x, y)
        pc.fb, pc.f      # rows (image x path point) through forward+backward / forward only
    """

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.fb = 0
        self.f = 0
        self._handle = None

    def _hook(self, module, args, output):  # after the forward: a chunk that ran out of memory is not counted
        rows = args[0].shape[0] if args and isinstance(args[0], torch.Tensor) else 0
        if torch.is_grad_enabled() and args[0].requires_grad:
            self.fb += rows
        else:
            self.f += rows

    def __enter__(self):
        self._handle = self.model.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc):
        self._handle.remove()


class GradientEvaluator(Chunked):
    """Evaluates f_y and its input gradient on many rows, in memory-sized chunks.

    Args:
        objective: "prob" (softmax probability of the target, the papers' default) or "logit".
        max_batch: rows per forward/backward; None picks :func:`default_max_batch` (128 on CUDA; 32 on the
            CPU, fewer for large images).
        autocast: False (float32), "bf16" or "fp16" for the forward under ``torch.autocast``.
        setting: the setting's name in out-of-memory errors.
        chunker: share another object's :class:`Chunker` (and its remembered size) instead of a new one.
    """

    def __init__(self, objective: str = "prob", max_batch: int | None = None, autocast=False,
                 setting: str = "method.max_batch", chunker: Chunker | None = None):
        self.objective = check_objective(objective)
        self.chunker = chunker or Chunker(max_batch, setting)
        self.autocast = check_autocast(autocast)

    def chunk_size(self, device: torch.device, row_shape=None) -> int:
        return self.chunker.size(device, row_shape)

    def autocast_context(self, device: torch.device):
        """The forward's precision context (``torch.autocast`` or a no-op for float32)."""
        return autocast_context(device, self.autocast)

    def map_rows(self, fn: Callable, *tensors: torch.Tensor):
        """``fn`` on matching row chunks of ``tensors``, with out-of-memory back-off; outputs concatenated."""
        return self.chunker.map(fn, *tensors)

    def _grad_rows(self, model, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            with self.autocast_context(x.device):
                logits = model(xr)
            score = target_score(logits, target, self.objective)
            (grad,) = torch.autograd.grad(score.sum(), xr)
        return grad.float(), score.detach()

    def _score_rows(self, model, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), self.autocast_context(x.device):
            return target_score(model(x), target, self.objective)

    def grad(self, model, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(d f_y / d x, f_y) for rows x [N,...] and targets [N]."""
        return self.map_rows(lambda a, t: self._grad_rows(model, a, t), x, target)

    def score(self, model, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """f_y for rows x [N,...] without gradients."""
        return self.map_rows(lambda a, t: self._score_rows(model, a, t), x, target)

    def grad_stack(self, model, points: torch.Tensor, target: torch.Tensor):
        """Gradients on a [B,S,C,H,W] stack of points for targets [B] -> ([B,S,C,H,W], [B,S])."""
        b, s = points.shape[:2]
        g, f = self.grad(model, points.reshape(b * s, *points.shape[2:]), target.repeat_interleave(s))
        return g.view_as(points), f.view(b, s)
