"""Batched gradients of the objective with respect to the input, chunked to fit memory.

Rows of any stack of inputs are evaluated in chunks of at most ``max_batch`` rows; on CUDA out-of-memory
the chunk is halved and retried, so long runs keep going (docs/design.md, "Batched").
"""
from __future__ import annotations

import contextlib
from typing import Callable, Optional, Tuple

import torch

from ..errors import ConfigError
from .objective import check_objective, target_score

AUTOCAST_DTYPES = {False: None, None: None, "none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


#: on the CPU a chunk holds about this many pixels (rows x H x W): per row, chunks of 32 images of 224-256 px ran
#: 15-50% slower than chunks of 8-16 for ResNet-18, VGG-16 and EfficientNet-Lite0 forward+backward (IG on the
#: embedded photos: 1.64 s/image at 32 rows, 0.57 at 8), while 32 rows stay the fastest at 64 px and below
CPU_CHUNK_PIXELS = 1 << 19


def default_max_batch(device: torch.device, row_shape=None) -> int:
    """Rows per chunk when ``max_batch`` is None: 128 on CUDA (halved on out-of-memory); on the CPU 32, or for rows
    of ``row_shape`` (..., H, W) the largest power of two <= 32 holding at most CPU_CHUNK_PIXELS pixels
    (8 at 224-256 px, 32 at 128 px and below)."""
    if device.type == "cuda":
        return 128
    if row_shape is None or len(row_shape) < 2:
        return 32
    rows = max(1, CPU_CHUNK_PIXELS // max(1, int(row_shape[-1]) * int(row_shape[-2])))
    return min(32, 1 << (rows.bit_length() - 1))


def is_oom(err: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the CPU allocator's "can't allocate memory" / "not enough memory"."""
    msg = str(err).lower()
    return isinstance(err, torch.OutOfMemoryError) or any(
        s in msg for s in ("out of memory", "can't allocate memory", "not enough memory"))


def shrinks_on_oom(device: torch.device) -> bool:
    """On CUDA an out-of-memory chunk is halved and retried; elsewhere the run stops naming the setting to lower."""
    return device.type == "cuda"


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


class GradientEvaluator:
    """Evaluates f_y and its input gradient on many rows, in memory-sized chunks.

    Args:
        objective: "prob" (softmax probability of the target, the papers' default) or "logit".
        max_batch: rows per forward/backward; None picks :func:`default_max_batch` (128 on CUDA; 32 on the
            CPU, fewer for large images).
        autocast: False (float32), "bf16" or "fp16" for the forward under ``torch.autocast``.
    """

    def __init__(self, objective: str = "prob", max_batch: Optional[int] = None, autocast=False):
        self.objective = check_objective(objective)
        if max_batch is not None and (not isinstance(max_batch, int) or max_batch < 1):
            raise ConfigError(f"invalid max_batch={max_batch!r}: a positive integer or None")
        if autocast not in AUTOCAST_DTYPES:
            raise ConfigError(f"invalid autocast={autocast!r}: choose one of False, 'bf16', 'fp16'")
        self.max_batch = max_batch
        self.autocast = autocast

    def chunk_size(self, device: torch.device, row_shape=None) -> int:
        return self.max_batch or default_max_batch(device, row_shape)

    def _ctx(self, device):
        dtype = AUTOCAST_DTYPES[self.autocast]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=dtype)

    def _grad_rows(self, model, x: torch.Tensor, target: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            with self._ctx(x.device):
                logits = model(xr)
            score = target_score(logits, target, self.objective)
            (grad,) = torch.autograd.grad(score.sum(), xr)
        return grad.float(), score.detach()

    def _score_rows(self, model, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), self._ctx(x.device):
            return target_score(model(x), target, self.objective)

    def _chunked(self, fn: Callable, x: torch.Tensor, target: torch.Tensor):
        """Run ``fn`` on chunks of rows; halve the chunk on CUDA OOM. Returns the concatenated outputs."""
        n = x.shape[0]
        size = max(1, self.chunk_size(x.device, x.shape[1:]))
        outs, start = [], 0
        while start < n:
            stop = min(n, start + size)
            try:
                outs.append(fn(x[start:stop], target[start:stop]))
            except RuntimeError as err:
                if not is_oom(err):
                    raise
                if not shrinks_on_oom(x.device):
                    raise MemoryError(
                        f"out of memory on {x.device} with a chunk of {stop - start} rows: lower max_batch "
                        f"(e.g. method.max_batch={max(1, (stop - start) // 2)})") from err
                if size == 1:
                    raise
                torch.cuda.empty_cache()
                size = max(1, size // 2)
                self.max_batch = size  # remember the size that fits for the rest of the run
                continue
            start = stop
        if isinstance(outs[0], tuple):
            return tuple(torch.cat(parts) for parts in zip(*outs))
        return torch.cat(outs)

    def grad(self, model, x: torch.Tensor, target: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(d f_y / d x, f_y) for rows x [N,...] and targets [N]."""
        return self._chunked(lambda a, t: self._grad_rows(model, a, t), x, target)

    def score(self, model, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """f_y for rows x [N,...] without gradients."""
        return self._chunked(lambda a, t: self._score_rows(model, a, t), x, target)

    def grad_stack(self, model, points: torch.Tensor, target: torch.Tensor):
        """Gradients on a [B,S,C,H,W] stack of points for targets [B] -> ([B,S,C,H,W], [B,S])."""
        b, s = points.shape[:2]
        g, f = self.grad(model, points.reshape(b * s, *points.shape[2:]), target.repeat_interleave(s))
        return g.view_as(points), f.view(b, s)
