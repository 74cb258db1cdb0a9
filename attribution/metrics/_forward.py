"""Shared machinery of the perturbation metrics: stable rankings and chunked no-grad forwards.

The perturbation metrics build every perturbed image of a batch *virtually*: a ``make_rows(start, stop)`` callback
materialises only the rows of one chunk, so memory stays at ``max_batch`` images whatever the number of
perturbation levels. On CUDA out-of-memory the chunk is halved and retried (as the gradient engine does).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..engine.gradients import AUTOCAST_DTYPES, default_max_batch, is_oom, shrinks_on_oom
from ..errors import ConfigError


def descending_ranks(scores: torch.Tensor) -> torch.Tensor:
    """Rank of every entry of each row of ``scores`` [B, N] in a *stable* descending sort.

    rank 0 = most important. Ties keep flat-index order (the lower index ranks first), on CPU and CUDA alike.
    """
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ar = torch.arange(scores.shape[1], device=scores.device).expand_as(order)
    ranks.scatter_(1, order, ar)
    return ranks


def runs(start: int, stop: int, per_run: int):
    """Split rows [start, stop) of a virtual stack laid out as (run, level) - run = row // per_run - into maximal
    pieces of one run: yields (run, first level, stop level). A chunk of n rows touches at most n / per_run + 2
    runs; each piece is then built with broadcasting (no per-row gathers of image-sized data)."""
    while start < stop:
        run, lo = divmod(start, per_run)
        hi = min(per_run, lo + stop - start)
        yield run, lo, hi
        start += hi - lo


@torch.no_grad()
def score_rows(model, n_rows: int, make_rows: Callable[[int, int], torch.Tensor], row_target: torch.Tensor,
               max_batch: int | None, device: torch.device, autocast=False,
               on_shrink: Callable[[int], None] | None = None, row_shape=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluate ``n_rows`` virtual rows in chunks: returns (softmax prob of the row's target [N] float32,
    top-1 correct [N] as 1.0/0.0); both are NaN for rows whose logits are not finite (a NaN/Inf model output
    must give a NaN score, not argmax's guess). ``make_rows(start, stop)`` returns the [stop-start, C, H, W] rows.
    ``autocast``: False (float32) | "bf16" | "fp16" for the forwards (softmax stays in float32).
    ``on_shrink(size)`` is told the chunk size that fits after a CUDA out-of-memory (a metric keeps it as its
    ``max_batch``, so later calls start there instead of running out of memory again). ``row_shape`` (C, H, W)
    sizes the default chunk (:func:`attribution.engine.gradients.default_max_batch`)."""
    size = max(1, max_batch or default_max_batch(device, row_shape))
    dtype = AUTOCAST_DTYPES[autocast]
    probs, correct = [], []
    start = 0
    while start < n_rows:
        stop = min(n_rows, start + size)
        try:
            rows = make_rows(start, stop)
            if dtype is None:
                logits = model(rows).float()
            else:
                with torch.autocast(device_type=device.type, dtype=dtype):
                    logits = model(rows).float()
        except RuntimeError as err:
            if not is_oom(err):
                raise
            if not shrinks_on_oom(device):
                raise MemoryError(f"out of memory on {device} with a chunk of {stop - start} rows: lower the "
                                  f"metric's max_batch (e.g. max_batch={max(1, (stop - start) // 2)})") from err
            if size == 1:
                raise
            torch.cuda.empty_cache()
            size = max(1, size // 2)
            if on_shrink is not None:
                on_shrink(size)
            continue
        t = row_target[start:stop]
        finite = torch.isfinite(logits).all(-1)
        nan = torch.full((), float("nan"), device=logits.device)
        probs.append(torch.where(finite, torch.softmax(logits, dim=-1).gather(1, t.view(-1, 1)).squeeze(1), nan))
        correct.append(torch.where(finite, (logits.argmax(dim=-1) == t).float(), nan))
        start = stop
    return torch.cat(probs), torch.cat(correct)


def check_autocast(autocast):
    if not isinstance(autocast, (bool, str, type(None))) or autocast not in AUTOCAST_DTYPES:
        raise ConfigError(f"invalid autocast={autocast!r}: choose one of False, 'bf16', 'fp16'")
    return autocast


def check_positive_int(key: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"invalid {key}={value!r}: a positive integer" + (" or None" if allow_none else ""))
