"""The one chunking loop of the library: rows in memory-sized chunks, with out-of-memory back-off.

Gradients (:class:`attribution.engine.gradients.GradientEvaluator`), the metrics' perturbed forwards and the VAE's
encode/decode passes all run through :meth:`Chunker.run`. On CUDA an out-of-memory chunk is halved and retried,
and the size that fits is kept for the rest of the run; on the CPU the run stops with a ``MemoryError`` that names
the setting to lower (docs/design.md, "Batched").
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..errors import check, check_int

AUTOCAST_DTYPES = {False: None, None: None, "none": None, "bf16": torch.bfloat16, "fp16": torch.float16}

#: on the CPU a chunk holds about this many pixels (rows x H x W): large chunks of large images run slower per row
#: (the measurement is in results/speed/), while 32 rows stay the fastest at 64 px and below
CPU_CHUNK_PIXELS = 1 << 19


def check_autocast(autocast):
    """False (float32) | "bf16" | "fp16"; returns it."""
    ok = isinstance(autocast, (bool, str, type(None))) and autocast in AUTOCAST_DTYPES
    check(ok, "autocast", autocast, "choose one of False, 'bf16', 'fp16'")
    return autocast


def autocast_context(device: torch.device, autocast) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for "bf16"/"fp16", a no-op context for float32."""
    dtype = AUTOCAST_DTYPES[autocast]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


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


def concat(outs: Sequence[Any]):
    """Concatenate per-chunk outputs: tensors along rows, tuples of tensors element-wise."""
    if isinstance(outs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outs))
    return torch.cat(outs)


class Chunker:
    """Rows per chunk (``max_batch``; None = :func:`default_max_batch`) and the loop that runs them.

    Args:
        max_batch: rows per chunk, or None for the device default.
        setting: the user-facing name of the setting, named by the CPU out-of-memory error (e.g. "method.max_batch").
        default: rows per chunk when ``max_batch`` is None, instead of :func:`default_max_batch`.
    """

    def __init__(self, max_batch: int | None = None, setting: str = "max_batch",
                 default: Callable[[torch.device, Any], int] | None = None):
        self.max_batch = check_int(setting.rsplit(".", 1)[-1], max_batch, 1, allow_none=True)
        self.setting = setting
        self._default = default or default_max_batch

    def size(self, device: torch.device, row_shape=None) -> int:
        return max(1, self.max_batch or self._default(device, row_shape))

    def run(self, fn: Callable[[int, int], Any], n_rows: int, device: torch.device, row_shape=None) -> list:
        """``[fn(start, stop) for each chunk]`` over rows [0, n_rows).

        On an out-of-memory error in ``fn``: on CUDA the chunk is halved and retried (and the size that fits is
        kept as ``max_batch``); on the CPU a ``MemoryError`` names the setting to lower. An error with a chunk
        of one row is raised as it is."""
        size = self.size(device, row_shape)
        outs, start = [], 0
        while start < n_rows:
            stop = min(n_rows, start + size)
            try:
                outs.append(fn(start, stop))
            except RuntimeError as err:
                if not is_oom(err):
                    raise
                if not shrinks_on_oom(device):
                    raise MemoryError(
                        f"out of memory on {device} with a chunk of {stop - start} rows: lower {self.setting} "
                        f"(e.g. {self.setting}={max(1, (stop - start) // 2)})") from err
                if size == 1:
                    raise
                torch.cuda.empty_cache()
                size = max(1, size // 2)
                self.max_batch = size  # remember the size that fits for the rest of the run
                continue
            start = stop
        return outs

    def map(self, fn: Callable[..., Any], *tensors: torch.Tensor, row_shape=None):
        """``fn`` on matching row chunks of ``tensors`` (the first one sizes the chunk), outputs concatenated."""
        first = tensors[0]
        outs = self.run(lambda s, e: fn(*(t[s:e] for t in tensors)), first.shape[0], first.device,
                        first.shape[1:] if row_shape is None else row_shape)
        return concat(outs)


class Chunked:
    """Mixin for objects that run rows through ``self.chunker``: their ``max_batch`` is the chunker's (None: the
    device default; after a CUDA out-of-memory, the size that fitted)."""

    chunker: Chunker

    @property
    def max_batch(self) -> int | None:
        """Rows per chunk (None: the device default); after a CUDA out-of-memory, the size that fitted."""
        return self.chunker.max_batch

    @max_batch.setter
    def max_batch(self, value: int | None) -> None:
        self.chunker.max_batch = value
