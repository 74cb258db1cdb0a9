"""IG^2 (GradCF path) as the authors run it (``IG2Explainer``; docs/upstream_methods.md section 2.9)."""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .core import NO_CLOCK, input_grad, parameters_require_grad


class IG2Run(NamedTuple):
    attr: torch.Tensor  # [C,H,W], the mean over the references
    path: list[torch.Tensor]  # steps + 1 points, each [R,C,H,W] (one copy of x per reference)
    target_reps: torch.Tensor  # the references' representation [R, ...]


def representation(model, layer, x: torch.Tensor, grad: bool = False) -> torch.Tensor:
    """The representation = the *input* of ``layer`` (``model.fc`` for ResNet/GoogLeNet, ``classifier[0]`` for VGG,
    ``heads.head`` for ViT), captured by a forward hook during ``model(x)``."""
    feats = {}
    handle = layer.register_forward_hook(lambda m, inp, out: feats.__setitem__("f", inp[0]))
    try:
        with torch.set_grad_enabled(grad):
            model(x)
    finally:
        handle.remove()
    return feats["f"]


def authors_ig2(model, layer, x: torch.Tensor, target, references: torch.Tensor, steps: int = 201,
                step_size: float = 0.02, clock=NO_CLOCK, max_steps: int | None = None) -> IG2Run:
    """IG^2 of one image [C,H,W] against ``references`` [R,C,H,W] (upstream: R = ``n_references`` images drawn by
    ``randperm(100)[:R]`` from a bank of the first 100 val images, the image itself allowed; 1 in MA-GIG, 3 in SIG).
    Always the prob objective. ``max_steps`` (timing only) cuts the path search short."""
    run_steps = steps if max_steps is None else min(steps, max(1, int(max_steps)))
    n = references.shape[0]
    y = int(target)
    # the batch is the R copies of x
    xr = x.unsqueeze(0).expand(n, -1, -1, -1)
    with clock.phase("setup"):
        target_reps = representation(model, layer, references).clone()  # one forward of the references
    path = [xr.clone()]
    # ``.backward()`` with parameters that require grad, as upstream (section 9.9)
    with parameters_require_grad(model):
        # the path search from x with delta = 0: gradient steps on -MSE(rep(x + delta), rep(ref)), normalised per
        # copy (norm clamped >= 1e-10), moving x *toward* the reference's representation; no clamping to the box
        delta = torch.zeros_like(xr)
        for _ in range(run_steps):
            with clock.phase("path"):
                cur = (xr + delta).clone().detach().requires_grad_(True)
                loss = -F.mse_loss(representation(model, layer, cur, grad=True), target_reps)
                g = input_grad(loss, cur)
                norm = torch.norm(g.view(n, -1), p=2, dim=1, keepdim=True).clamp(min=1e-10)
                delta = delta + g / norm.view(n, 1, 1, 1) * step_size
                path.append((xr + delta).clone())
        # the integration, a second pass over the same points: sum_i grad p_y(path_{i-1}) (path_{i-1} - path_i),
        # the gradient at the end nearer x and the sign chosen so the sum ~= f(x) - f(path_end)
        with clock.phase("integrate", len(path) - 1):
            attr = torch.zeros_like(path[0])
            for i in range(1, len(path)):
                p = path[i - 1].clone().requires_grad_(True)
                prob = torch.softmax(model(p), -1)[:, y]
                attr = attr + (path[i - 1] - path[i]) * input_grad(prob.sum(), p)
    # then the mean over the references
    return IG2Run(attr.mean(dim=0), path, target_reps)
