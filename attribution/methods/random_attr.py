"""Random attributions: the control that any sensible method should beat (the SIG authors' ROAR "random").

attr ~ N(0, 1) i.i.d. per element, drawn on the CPU per image from a generator seeded by ``seed`` and the image's own
values (:mod:`attribution.engine.seeding`), then moved to x's device. So an image gets the same map in any batch, on
any device, and whatever the model: a map that ignores the model, as the sanity checks must find it (randomising
the model leaves it unchanged), while a changed input (the robustness metrics' noisy copies) gets fresh noise. The
model is never called (0 passes). Upstream draws ``np.random.seed(0); randn(50000, 3, 32, 32)`` once for the whole
CIFAR train set; the values differ, the distribution is the same.
Not a path method (no completeness).
"""

from ..engine.seeding import randn_per_image
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
        return Attribution(randn_per_image(x, 1, self.seed)[:, 0])

    def cost(self, height=256, width=256):
        return {"fb": 0, "f": 0}

    def __repr__(self):
        return f"RandomAttribution(seed={self.seed})"
