"""IDGI as its authors run it (Yang, Wang and Bilgic, CVPR 2023; their numpy function ``IDGI(Gradients,
Predictions)``): given the gradients and the predictions f_c at every point of an IG-family path, one segment at a
time in numpy, the gradient at the last point unused:

    result = sum_{j=0}^{P-2} g_j**2 * (f_{j+1} - f_j) / sum(g_j**2).
"""
from __future__ import annotations

import numpy as np
import torch

from .core import grad_at, score


def authors_idgi(gradients, predictions) -> np.ndarray:
    """The authors' loop over the path's points (lists of arrays and floats of equal length)."""
    assert len(gradients) == len(predictions)
    result = np.zeros_like(gradients[0])
    for j in range(len(gradients) - 1):
        squared = gradients[j] ** 2
        result += squared * (predictions[j + 1] - predictions[j]) / np.sum(squared)
    return result


def idgi_on_path(model, path: torch.Tensor, target, objective: str = "prob") -> np.ndarray:
    """The authors' IDGI on a path [P,C,H,W]: one forward+backward per point for the gradient, one forward for f."""
    grads, preds = [], []
    for p in path:
        grads.append(grad_at(model, p.unsqueeze(0), target, objective)[0].numpy())
        with torch.no_grad():
            preds.append(float(score(model(p.unsqueeze(0)), target, objective)))
    return authors_idgi(grads, preds)
