"""Shared machinery of the perturbation metrics: stable rankings and chunked no-grad forwards.

The perturbation metrics build every perturbed image of a batch *virtually*: a ``make_rows(start, stop)`` callback
materialises only the rows of one chunk, so memory stays at ``max_batch`` images whatever the number of
perturbation levels. Chunks run through the library's one chunking loop (out-of-memory back-off included).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..engine.chunking import Chunker, autocast_context, concat


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
               chunker: Chunker, device: torch.device, autocast=False,
               row_shape=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluate ``n_rows`` virtual rows in chunks: returns (softmax prob of the row's target [N] float32,
    top-1 correct [N] as 1.0/0.0); both are NaN for rows whose logits are not finite (a NaN/Inf model output
    must give a NaN score, not argmax's guess). ``make_rows(start, stop)`` returns the [stop-start, C, H, W] rows.
    ``chunker`` (the metric's :class:`attribution.engine.chunking.Chunker`) sizes the chunks and backs off on
    out-of-memory, keeping the size that fits; ``autocast``: False (float32) | "bf16" | "fp16" for the forwards
    (softmax stays in float32); ``row_shape`` (C, H, W) sizes the default chunk."""

    def chunk(start: int, stop: int):
        with autocast_context(device, autocast):
            logits = model(make_rows(start, stop)).float()
        t = row_target[start:stop]
        finite = torch.isfinite(logits).all(-1)
        nan = torch.full((), float("nan"), device=logits.device)
        prob = torch.where(finite, torch.softmax(logits, dim=-1).gather(1, t.view(-1, 1)).squeeze(1), nan)
        return prob, torch.where(finite, (logits.argmax(dim=-1) == t).float(), nan)

    return concat(chunker.run(chunk, n_rows, device, row_shape))
