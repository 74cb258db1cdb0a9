"""Adversarial Gradient Integration as the authors run it (``AGIExplainer``; docs/upstream_methods.md 2.8)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from .core import input_grad, parameters_require_grad, preprocess


class AGIRun(NamedTuple):
    attr: torch.Tensor  # [C,H,W]
    iterations: list[int]  # per target class (0 for the true label, skipped)
    success: list[bool]  # per target class: stopped because argmax == t


def agi_targets(num_classes: int, num_neg_cls: int = 10) -> list[int]:
    """``range(0, num_classes - 1, max(1, int(num_classes / num_neg_cls)))``: ImageNet {0, 100, .., 900}; class
    K - 1 is never a target (the range end inherited from the official code)."""
    return list(range(0, num_classes - 1, max(1, int(num_classes / num_neg_cls))))


def authors_agi(model, x: torch.Tensor, target, num_neg_cls: int = 10, step_size: float = 0.05, max_iter: int = 15,
                mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                num_classes: int | None = None) -> AGIRun:
    """AGI of one normalised image [C,H,W]; ``exp_obj`` is ignored (always prob). ``num_classes`` defaults to the
    model's output width."""
    y = int(target)
    data = x[None]
    # the step is clamped to the pixel box [0, 1], per channel in normalised units: [(0 - m)/s, (1 - m)/s]
    lo, hi = preprocess(torch.zeros_like(data), mean, std), preprocess(torch.ones_like(data), mean, std)
    if num_classes is None:
        with torch.no_grad():
            num_classes = model(data).shape[1]
    step_grad = torch.zeros_like(data)
    iterations, success = [], []
    # ``.backward()`` with parameters that require grad, as upstream (section 9.9)
    with parameters_require_grad(model):
        for t in agi_targets(num_classes, num_neg_cls):
            if t == y:  # the true label is skipped
                iterations.append(0)
                success.append(False)
                continue
            # path-style variant: each step starts from the *current* perturbed image (the official AGI steps from
            # the fixed original; this repo switched deliberately)
            img = data.clone()
            c_delta = torch.zeros_like(data)
            n, ok = 0, False
            for _ in range(max_iter):
                img = img.detach().requires_grad_(True)
                out = model(img)
                # stop once the adversarial target is reached (no gradient for this iterate); a host sync each time
                if int(out.max(1, keepdim=True)[1]) == t:
                    ok = True
                    break
                probs = torch.softmax(out, dim=1)
                # two backward passes through one graph: the adversarial class, then the label
                g_adv = input_grad(probs[0, t], img, retain_graph=True)
                g_lab = input_grad(probs[0, y], img)
                # an FGSM step towards t, clamped to the pixel box
                rect = torch.max(torch.min(img.detach() + step_size * g_adv.sign(), hi), lo)
                # accumulate -grad p_y * (x_{k+1} - x_k)
                c_delta += -g_lab * (rect - img.detach())
                img = rect
                n += 1
            step_grad += c_delta
            iterations.append(n)
            success.append(ok)
    # the attribution is the plain sum over targets and steps (no normalisation)
    return AGIRun(step_grad[0], iterations, success)
