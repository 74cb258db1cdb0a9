"""Integrated Gradients and Gradient x Input as the authors run them (docs/upstream_methods.md sections 2.1, 2.3)."""
from __future__ import annotations

import torch

from .core import compute_ig, grad_at


def ig_path(x: torch.Tensor, baseline: torch.Tensor, n_steps: int) -> torch.Tensor:
    """``LinearPathGenerator``: alpha = linspace(0, 1, N), path_k = b + alpha_k (x - b) -> [N,C,H,W] (2.1)."""
    alphas = torch.linspace(0, 1, n_steps, device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)
    return baseline + alphas * (x - baseline)


def authors_ig(model, x: torch.Tensor, baseline: torch.Tensor, target, n_steps: int = 200,
               objective: str = "prob") -> torch.Tensor:
    """IG of one image [C,H,W] (2.1): the straight line from the baseline (the authors' "zero" baseline is
    preprocess(0), section 1.1), then ``compute_ig``: N forward+backward passes, the last one wasted, and a left
    sum over N - 1 intervals."""
    return compute_ig(model, ig_path(x, baseline, n_steps), target, objective)


def authors_grad_input(model, x: torch.Tensor, baseline: torch.Tensor, target, objective: str = "prob") -> torch.Tensor:
    """Gradient x Input of one image (2.3): grad f(x) * (x - b), with b the black baseline; one forward+backward."""
    return grad_at(model, x[None], target, objective)[0] * (x - baseline)
