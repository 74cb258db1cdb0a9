"""AGI: batched implementation vs the authors' per-image loop (benchmarks.reference; upstream §2.8)."""
import pytest
import torch
import torch.nn as nn
from helpers.models import MEAN, STD, TanhNet, normalized_images

import attribution
from attribution import ConfigError, PassCounter
from attribution.methods.agi import agi_target_classes
from benchmarks.reference import authors_agi


@pytest.mark.parametrize("eps,max_iter", [(0.05, 15), (0.3, 6)])
def test_agi_matches_the_authors_per_image_loop(eps, max_iter):
    model, x, y = TanhNet().eval(), normalized_images(), torch.tensor([0, 1, 2])
    m = attribution.build_method("agi", step_size=eps, max_iter=max_iter, mean=MEAN, std=STD, max_batch=4)
    out = m.attribute(model, x, y)
    # per image and target, as ``AGIExplainer._pgd_step`` with the path-style FGSM step (benchmarks/reference/agi.py)
    runs = [authors_agi(model, x[b], int(y[b]), 10, eps, max_iter, MEAN, STD) for b in range(len(x))]
    ref = torch.stack([r.attr for r in runs])
    iters, success = torch.tensor([r.iterations for r in runs]), torch.tensor([r.success for r in runs])
    assert out.attr.shape == x.shape and out.attr.dtype == torch.float32
    assert torch.allclose(out.attr, ref, rtol=1e-5, atol=1e-5 * ref.abs().max())
    assert torch.equal(out.extras["iterations"], iters)
    assert torch.equal(out.extras["success"], success)
    # the mix this test relies on: some rows stop early on argmax == t, some run to max_iter
    valid = out.extras["valid"]
    assert (success & valid & (iters > 0)).any()
    if max_iter == 15:
        assert (~success & valid & (iters == max_iter)).any()
    assert out.f_start is None and out.completeness is None


def test_agi_target_classes_as_documented():
    assert agi_target_classes(1000, 10) == list(range(0, 1000, 100))
    assert agi_target_classes(37, 10) == list(range(0, 34, 3)) and len(agi_target_classes(37, 10)) == 12
    assert agi_target_classes(102, 10) == list(range(0, 101, 10)) and len(agi_target_classes(102, 10)) == 11
    assert agi_target_classes(10, 10) == list(range(9))  # class 9 is never a target (upstream quirk)
    assert agi_target_classes(1000, 15) == list(range(0, 999, 66))  # upstream class default num_neg_cls=15
    model, x = TanhNet(classes=5).eval(), normalized_images()
    out = attribution.build_method("agi", max_iter=2).attribute(model, x, torch.tensor([0, 3, 4]))
    assert out.extras["targets"].tolist() == [0, 1, 2, 3]
    assert out.extras["valid"].tolist() == [[False, True, True, True], [True, True, True, False],
                                            [True, True, True, True]]
    assert (out.extras["iterations"][~out.extras["valid"]] == 0).all()


def test_agi_stopping_masks_and_pass_count():
    model, x, y = TanhNet().eval(), normalized_images(n=4), torch.tensor([0, 1, 2, 3])
    m = attribution.build_method("agi", num_classes=5, mean=MEAN, std=STD, max_batch=5)
    with PassCounter(model) as pc:
        out = m.attribute(model, x, y)
    it, ok = out.extras["iterations"], out.extras["success"]
    # a row's forwards: one per step taken, plus the one that saw argmax == t (unless already true at x)
    assert pc.fb == int(it.sum() + (ok & (it > 0)).sum())
    assert pc.f == 4  # the input, once per image
    cost = m.cost()
    assert cost == {"fb": 4 * 15, "b": 4 * 15, "f": 1}
    assert pc.fb <= cost["fb"] * 4
    assert (it <= 15).all() and ((it == 15) | ok | ~out.extras["valid"]).all()  # a row stops only by success
    assert all(p.grad is None for p in model.parameters())


class _Recorder(nn.Module):
    """Records the per-channel min/max of every input the wrapped model sees."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.lo, self.hi = inner, [], []

    def forward(self, x):
        self.lo.append(x.detach().amin(dim=(0, 2, 3)))
        self.hi.append(x.detach().amax(dim=(0, 2, 3)))
        return self.inner(x)


@pytest.mark.parametrize("mean,std", [(MEAN, STD), (None, None)])
def test_agi_clamps_to_pixel_bounds(mean, std):
    x = normalized_images() if mean else torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    rec = _Recorder(TanhNet().eval())
    attribution.build_method("agi", step_size=0.7, max_iter=4, mean=mean, std=std)(rec, x, torch.tensor([0, 1, 2]))
    m = torch.tensor(mean or (0.0, 0.0, 0.0))
    s = torch.tensor(std or (1.0, 1.0, 1.0))
    lo, hi = (0 - m) / s, (1 - m) / s
    seen_lo, seen_hi = torch.stack(rec.lo).amin(0), torch.stack(rec.hi).amax(0)
    assert (seen_lo >= lo - 1e-6).all() and (seen_hi <= hi + 1e-6).all()
    assert torch.allclose(seen_lo, lo) and torch.allclose(seen_hi, hi)  # the clamp was active


def test_agi_rejects_bad_values_and_mismatched_classes():
    for bad in [dict(step_size=0), dict(step_size=-1.0), dict(max_iter=0), dict(num_neg_cls=0),
                dict(num_classes=1), dict(objective="x")]:
        with pytest.raises(ValueError):
            attribution.build_method("agi", **bad)
    with pytest.raises(ConfigError, match="num_classes"):
        attribution.build_method("agi", num_classes=7)(TanhNet().eval(), normalized_images(), torch.tensor([0, 1, 2]))
