"""The DiffID protocol as the authors' ``metric/diffid.py`` runs it (docs/upstream_methods.md section 5.1), written
as plain loops over ratios and directions for one image."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # the docstring's 0.05..0.95 is stale


def diffid_curves(model, x: torch.Tensor, attr: torch.Tensor, target, fill: str = "mean",
                  score: str = "hard") -> np.ndarray:
    """Scores of one image [C,H,W] -> [2, 9]: row 0 "insertion", row 1 deletion, one column per ratio.

    The ranking is a *stable* numpy argsort of -|A|: upstream's CUDA ``argsort`` breaks ties arbitrarily (section
    9.6), the library documents the stable order, and this oracle follows it."""
    from torchvision.transforms.functional import gaussian_blur

    y = int(target)
    flat = x.flatten()
    # importance = |A| over channel x pixel *elements* (D = C*H*W), no channel aggregation
    d = flat.numel()
    order = np.argsort(-attr.abs().flatten().numpy(), kind="stable")
    with torch.no_grad():
        p0 = torch.softmax(model(x[None]), -1)[0, y]
    out = np.zeros((2, len(RATIOS)))
    for direction in range(2):
        for j, r in enumerate(RATIOS):
            # k = int(D r) with a Python float product
            k = int(d * r)
            # deletion perturbs the k largest |A|; "insertion" (the repo's name) the k smallest, i.e. it keeps the
            # most important elements
            idx = order[:k] if direction == 1 else order[d - k:]
            replace = torch.zeros(d, dtype=torch.bool)
            replace[torch.from_numpy(idx.copy())] = True
            if fill == "mean":  # one scalar per image: the mean of the preserved elements, channels mixed
                val = flat[~replace].sum() / ((~replace).sum() + 1e-8)
            elif fill == "zero":  # 0 in normalised space
                val = torch.tensor(0.0)
            elif fill == "blur":  # SIG: the Gaussian 11 / sigma 5 blur of the normalised image, elementwise
                val = gaussian_blur(x[None], [11, 11], [5.0, 5.0]).flatten()
            else:  # MA-GIG: an 11x11 average pool
                val = nn.functional.avg_pool2d(x[None], 11, 1, 5).flatten()
            pert = torch.where(replace, val, flat).view(1, *x.shape)
            with torch.no_grad():
                logits = model(pert)
            if score == "hard":  # 1[argmax == y]
                out[direction, j] = float(logits.argmax(-1).item() == y)
            else:  # clamp(p_y(x~) / (p_y(x) + 1e-8), 0, 1)
                out[direction, j] = min(1.0, max(0.0, float(torch.softmax(logits, -1)[0, y] / (p0 + 1e-8))))
    return out
