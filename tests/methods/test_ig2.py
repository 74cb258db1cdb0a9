"""IG² (ig2): batched implementation vs the authors' per-image loop (benchmarks.reference; upstream §2.9)."""
import pytest
import torch
import torch.nn as nn
from helpers.models import MEAN, STD, TanhNet, normalized_images

import attribution
from attribution import ConfigError, PassCounter
from attribution.methods.ig2 import find_representation_layer
from benchmarks.reference import authors_ig2, representation


def _authors_ig2(model, layer, x, y, refs, steps, step_size):
    """``IG2Explainer`` one image at a time (benchmarks/reference/ig2.py), plus what the tests compare it on: f at each
    reference copy's path end and the representation MSE at the path's two ends."""
    out, ends, mse0, mse1 = [], [], [], []
    for b in range(x.shape[0]):
        run = authors_ig2(model, layer, x[b], int(y[b]), refs[b], steps, step_size)
        out.append(run.attr)
        with torch.no_grad():
            ends.append(torch.softmax(model(run.path[-1]), -1)[:, y[b]])
        for mse, pt in ((mse0, run.path[0]), (mse1, run.path[-1])):
            mse.append(((representation(model, layer, pt) - run.target_reps) ** 2).flatten(1).mean(1))
    return torch.stack(out), torch.stack(ends), torch.stack(mse0), torch.stack(mse1)


def test_ig2_matches_the_authors_loop_batch_bank():
    model, x, y = TanhNet().eval(), normalized_images(), torch.tensor([0, 1, 2])
    m = attribution.build_method("ig2", steps=20, step_size=0.05, rep_layer="head", seed=3, max_batch=2)
    out = m.attribute(model, x, y)
    idx = out.extras["reference_indices"]
    assert idx.shape == (3, 1)
    assert (idx[:, 0] != torch.arange(3)).all()  # without a bank: the *other* images of the batch
    refs = [x[idx[b]] for b in range(3)]
    ref, ends, mse0, mse1 = _authors_ig2(model, model.head, x, y, refs, 20, 0.05)
    assert out.attr.shape == x.shape and out.attr.dtype == torch.float32
    assert torch.allclose(out.attr, ref, rtol=1e-5, atol=1e-5 * ref.abs().max())
    assert torch.allclose(out.extras["f_path_end_per_reference"], ends, atol=1e-6)
    assert torch.allclose(out.extras["rep_mse_start"], mse0, rtol=1e-5, atol=1e-9)
    assert torch.allclose(out.extras["rep_mse_end"], mse1, rtol=1e-4, atol=1e-9)


def test_ig2_matches_the_authors_loop_with_bank_and_several_references():
    model, x, y = TanhNet().eval(), normalized_images(), torch.tensor([3, 1, 4])
    bank = torch.cat([normalized_images(n=5, seed=7), x[1:2]])  # image 1 is also in the bank
    m = attribution.build_method("ig2", steps=12, n_references=3, rep_layer="head", seed=11, references=bank,
                                 max_batch=4)  # chunks of 4 rows split an image's 3 reference copies
    out = m.attribute(model, x, y)
    idx = out.extras["reference_indices"]
    assert idx.shape == (3, 3) and all(len(set(r.tolist())) == 3 for r in idx)  # distinct per image
    ref, *_ = _authors_ig2(model, model.head, x, y, [bank[idx[b]] for b in range(3)], 12, 0.02)
    assert torch.allclose(out.attr, ref, rtol=1e-5, atol=1e-5 * ref.abs().max())
    # batch invariance: one image at a time gives the same rows (same draws -> same references)
    single = attribution.build_method("ig2", steps=12, n_references=3, rep_layer="head", seed=11, references=bank)
    one = single.attribute(model, x[:1], y[:1])
    assert torch.equal(one.extras["reference_indices"][0], idx[0])
    assert torch.allclose(one.attr[0], out.attr[0], rtol=1e-5, atol=1e-6 * ref.abs().max())


def test_ig2_reference_draws_seeded_and_exclude_self():
    x = normalized_images()
    bank = torch.cat([x, normalized_images(n=4, seed=9)])  # bank rows 0..2 are the images themselves
    a = attribution.build_method("ig2", n_references=2, references=bank, seed=5)
    b = attribution.build_method("ig2", n_references=2, references=bank, seed=5)
    c = attribution.build_method("ig2", n_references=2, references=bank, seed=6)
    _, exc = a._bank(x)
    assert not exc.any()  # exclude_self=False (upstream): the image may be its own reference
    da, db, dc = a.draw_references(3, exc), b.draw_references(3, exc), c.draw_references(3, exc)
    assert torch.equal(da, db) and not torch.equal(da, dc)
    e = attribution.build_method("ig2", n_references=6, references=bank, exclude_self=True)
    _, exc = e._bank(x)
    assert torch.equal(exc[:, :3], torch.eye(3, dtype=torch.bool)) and not exc[:, 3:].any()
    de = e.draw_references(3, exc)
    assert all(b not in de[b].tolist() for b in range(3))
    first = attribution.build_method("ig2", n_references=2, references=bank, reference_mode="first")
    assert first.draw_references(3, first._bank(x)[1]).tolist() == [[0, 1]] * 3
    with pytest.raises(ConfigError, match="offers only"):
        e2 = attribution.build_method("ig2", n_references=7, references=bank, exclude_self=True)
        e2.draw_references(3, e2._bank(x)[1])


def test_ig2_completeness_and_path_moves_toward_reference():
    model, x, y = TanhNet().eval(), normalized_images(), torch.tensor([0, 1, 2])
    out = attribution.build_method("ig2", steps=40, step_size=0.05, rep_layer="head").attribute(model, x, y)
    assert torch.allclose(out.f_end, torch.softmax(model(x), -1)[torch.arange(3), y].detach(), atol=1e-6)
    assert torch.allclose(out.f_start, out.extras["f_path_end_per_reference"].mean(1))
    total = out.attr.flatten(1).sum(1)
    assert torch.allclose(total, out.f_end - out.f_start, rtol=2e-2, atol=1e-5)
    assert (out.completeness < 2e-2).all(), out.completeness
    assert (out.extras["rep_mse_end"] < 0.7 * out.extras["rep_mse_start"]).all()


@pytest.mark.parametrize("n_refs", [1, 2])
def test_ig2_pass_count_matches_cost(n_refs):
    model, x, y = TanhNet().eval(), normalized_images(n=4), torch.tensor([0, 1, 2, 3])
    m = attribution.build_method("ig2", steps=7, n_references=n_refs, rep_layer="head", max_batch=3)
    with PassCounter(model) as pc:
        m(model, x, y)
    cost = m.cost()
    assert cost == {"fb": 7 * n_refs, "b": 7 * n_refs, "f": 2 * n_refs}
    assert pc.fb == cost["fb"] * 4 and pc.f == cost["f"] * 4
    assert all(p.grad is None for p in model.parameters())  # no parameter gradients were formed


def test_ig2_autodetects_timm_resnet_and_runs(tiny_timm):
    x, y = normalized_images(n=2, size=16), torch.tensor([1, 2])
    m = attribution.build_method("ig2", steps=1, mean=MEAN, std=STD)
    out = m.attribute(tiny_timm, x, y)
    assert m.last_rep_layer == "fc" and out.attr.shape == x.shape and torch.isfinite(out.attr).all()


class _VGGLike(nn.Module):  # torchvision VGG: features -> avgpool -> classifier (Sequential)
    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(3, 4, 3)
        self.classifier = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


class _TimmVGGLike(nn.Module):  # timm VGG: features -> pre_logits (ConvMlp) -> head
    def __init__(self):
        super().__init__()
        self.features, self.pre_logits, self.head = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 8, 1), nn.Linear(8, 3)


class _ViTLike(nn.Module):  # torchvision ViT
    def __init__(self):
        super().__init__()
        self.heads = nn.Sequential()
        self.heads.add_module("head", nn.Linear(4, 3))


class _TimmGeneric(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.last = nn.Conv2d(3, 4, 3), nn.Linear(4, 3)

    def get_classifier(self):
        return self.last


class _Wrapper(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.model = inner


@pytest.mark.parametrize("net,name", [
    (_VGGLike(), "classifier.0"), (_TimmVGGLike(), "pre_logits"), (_ViTLike(), "heads.head"),
    (_TimmGeneric(), "last"), (_Wrapper(_VGGLike()), "model.classifier.0"), (TanhNet(), None),
])
def test_ig2_representation_layer_detection(net, name):
    if name is None:
        with pytest.raises(ConfigError, match="rep_layer"):
            find_representation_layer(net)
        assert find_representation_layer(net, "head")[1] is net.head
    else:
        found, module = find_representation_layer(net)
        assert found == name and module is net.get_submodule(name)


def test_ig2_bad_rep_layer_and_bank_shape():
    with pytest.raises(ConfigError, match="rep_layer"):
        find_representation_layer(TanhNet(), "nope")
    m = attribution.build_method("ig2", steps=2, rep_layer="head", references=normalized_images(n=2, size=6))
    with pytest.raises(ConfigError, match="shape"):
        m(TanhNet().eval(), normalized_images(n=2), torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match="offers only"):  # a batch of one has no other image
        attribution.build_method("ig2", steps=2, rep_layer="head")(
            TanhNet().eval(), normalized_images(n=1), torch.tensor([0]))


@pytest.mark.parametrize("bad", [dict(steps=0), dict(steps=-3), dict(n_references=0), dict(step_size=0),
                                 dict(step_size=-0.1), dict(reference_mode="best"), dict(objective="x"),
                                 dict(references=torch.zeros(3, 8, 8))])
def test_ig2_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        attribution.build_method("ig2", **bad)
