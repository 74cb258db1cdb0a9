"""Per-image random draws: seeded by the run's seed and the image's own values, so that an image gets the same
draws whatever batch it is in, on whatever device (a batch equals each image alone)."""
from __future__ import annotations

import zlib

import torch


def image_generators(x: torch.Tensor, seed: int) -> list[torch.Generator]:
    """One CPU ``torch.Generator`` per image of x [B, ...], seeded with (seed, crc32 of the image's float32 bytes)."""
    flat = x.detach().float().cpu().contiguous().view(x.shape[0], -1).numpy()
    gens = []
    for row in flat:
        g = torch.Generator()
        g.manual_seed((int(seed) * 1_000_003 + zlib.crc32(row.tobytes())) % (2 ** 63))
        gens.append(g)
    return gens


def randn_per_image(x: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Standard normal draws [B, n, *x.shape[1:]] (float32, on x's device), per image as :func:`image_generators`."""
    return torch.stack([torch.randn((n, *x.shape[1:]), generator=g) for g in image_generators(x, seed)]).to(x.device)


def rand_per_image(x: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Uniform [0, 1) draws [B, n] in float64 (on x's device), per image as :func:`image_generators`."""
    return torch.stack([torch.rand(n, generator=g, dtype=torch.float64) for g in image_generators(x, seed)]).to(
        x.device)


def randint_per_image(x: torch.Tensor, n: int, high: int, seed: int) -> torch.Tensor:
    """Integers in [0, high) [B, n] (on x's device), per image as :func:`image_generators`."""
    return torch.stack([torch.randint(high, (n,), generator=g) for g in image_generators(x, seed)]).to(x.device)
