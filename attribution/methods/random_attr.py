"""Random attributions: the control that any sensible method should beat (the SIG authors' ROAR "random").

attr ~ N(0, 1) i.i.d. per element, drawn on the CPU from ``torch.Generator().manual_seed(seed)`` for the whole
[B,C,H,W] batch, then moved to x's device. Deterministic per call: the same seed and input shape give the same
tensor on every device, and row i of every batch gets the same noise (pass a different ``seed`` per batch for
fresh noise). The model is never called (0 passes). Upstream draws ``np.random.seed(0); randn(50000, 3, 32, 32)``
once for the whole CIFAR train set; the values differ, the distribution is the same.
Not a path method (no completeness).
"""
import torch

from ..errors import check_int
from .base import Attribution, AttributionMethod, register_method


@register_method("random", display="Random", order=99)
class RandomAttribution(AttributionMethod):
    name = "random"
    is_path = False
    excluded_options = ("objective", "max_batch", "autocast")  # the model is never called

    def __init__(self, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.seed = check_int("seed", seed, 0, allowed="a non-negative integer")

    def _attribute(self, model, x, target):
        g = torch.Generator(device="cpu").manual_seed(self.seed)
        attr = torch.randn(tuple(x.shape), generator=g, dtype=torch.float32).to(x.device)
        return Attribution(attr)

    def cost(self, height=256, width=256):
        return {"fb": 0, "f": 0}

    def __repr__(self):
        return f"RandomAttribution(seed={self.seed})"
