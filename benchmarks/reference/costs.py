"""The authors' network passes per image at N steps (docs/upstream_methods.md sections 2.13 and 11: batch 1, every
gradient and decode recomputed), in the row units of the library's ``method.cost()``: ``fb`` classifier
forward+backward, ``f`` forward only, ``decoder_f`` / ``decoder_b`` VAE decoder forwards / backwards, ``encoder``.
Each entry maps N to its rows; :mod:`benchmarks.flops` turns them into FLOPs."""
from __future__ import annotations

from collections.abc import Callable

UPSTREAM_COSTS: dict[str, Callable[[int], dict[str, int]]] = {
    "grad_input": lambda n: {"fb": 1},
    "ig": lambda n: {"fb": n},  # compute_ig: N gradients, the last one unused (1.3)
    "sig": lambda n: {"fb": n},  # plus 1 SVD and N reconstructions (3)
    "blur_ig": lambda n: {"fb": n + 1},  # N + 1 points, plus N blurs (2.2)
    "guided_ig": lambda n: {"fb": 2 * n - 1},  # N - 1 path gradients, all recomputed in compute_ig (2.4)
    "eig": lambda n: {"fb": n, "decoder_f": n, "encoder": 2},  # (2.6)
    # N - 1 steering passes through the decoder, N - 2 extra no-grad decodes of the path points, compute_ig (2.5)
    "ma_gig": lambda n: {"fb": 2 * n - 1, "decoder_f": 2 * n - 3, "decoder_b": n - 1, "encoder": 2},
}
