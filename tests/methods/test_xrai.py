"""XRAI over a base map against PAIR saliency's ``saliency.core.XRAI`` given the same image and base attribution;
batch invariance; option checks."""
import sys

import numpy as np
import pytest
import torch
from helpers.models import MEAN, STD, SmoothNet

import attribution
from attribution import Attribution, AttributionMethod, ConfigError, UnknownOptionError

pytest.importorskip("skimage")
pair = pytest.importorskip("saliency.core.xrai")
from skimage import data, transform  # noqa: E402

from attribution.modifiers.xrai import XRAI, segment_masks  # noqa: E402


class Synthetic(AttributionMethod):
    """A model-free base map: a function of each image alone (so exactly batch invariant), image-correlated plus
    a smooth off-centre bump, positive and negative."""

    name = "synthetic"

    def _attribute(self, model, x, target):
        pix = self.norm.denormalize(x)
        h, w = x.shape[2:]
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        bump = torch.exp(-((yy - 0.3) ** 2 + (xx + 0.2) ** 2) / 0.2)
        attr = torch.sin(7 * pix) * pix.mean(1, keepdim=True) + bump - 0.3 + 0.05 * torch.cos(13 * x)
        return Attribution(attr, None, None, {"f_x": pix.flatten(1).mean(1)})

    def cost(self, height=256, width=256):
        return {"fb": 0, "f": 0}


def _photo(name, size):
    img = transform.resize(getattr(data, name)(), size, anti_aliasing=True)  # float64 [0,1]
    pix = torch.from_numpy(img).float().permute(2, 0, 1)[None]
    return (pix - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def _pair(m, x, out, i, **params):
    """PAIR's XRAI of image i given our base map: x_value [H,W,C] as XRAI segments it, base_attribution [H,W,C]."""
    image = m.norm.denormalize(x)[i].permute(1, 2, 0).double().numpy()
    base = out.extras["base_attr"][i].permute(1, 2, 0).numpy()
    p = pair.XRAIParameters(return_xrai_segments=True, **{k: v for k, v in params.items() if k != "min_pixel_diff"})
    if "min_pixel_diff" in params:
        p.experimental_params["min_pixel_diff"] = params["min_pixel_diff"]
    return pair.XRAI().GetMaskWithDetails(image, None, base_attribution=base, extra_parameters=p)


def _rel_l1(ours, ref):
    return float(np.abs(ours - ref).sum() / np.abs(ref).sum())


def test_regions_equal_pairs_segmentation():
    x = _photo("coffee", (40, 60))
    image = Synthetic(mean=MEAN, std=STD).norm.denormalize(x)[0].permute(1, 2, 0).double().numpy()
    ref = [np.flatnonzero(r) for r in pair._get_segments_felzenszwalb(image) if r.any()]
    ours = segment_masks(image)
    assert len(ours) == len(ref) and all(np.array_equal(a, b) for a, b in zip(ours, ref))


CASES = [("coffee", (48, 64), {}), ("astronaut", (56, 56), {}),
         ("coffee", (48, 64), {"area_threshold": 0.3}), ("astronaut", (56, 56), {"algorithm": "fast"}),
         ("coffee", (48, 64), {"algorithm": "full", "min_pixel_diff": 200})]


@pytest.mark.parametrize("photo,size,options", CASES)
def test_equals_pair_on_a_synthetic_base(photo, size, options):
    x = _photo(photo, size)
    m = XRAI(Synthetic(mean=MEAN, std=STD), **options)
    out = m.attribute(SmoothNet().eval(), x, torch.tensor([0]))
    ref = _pair(m, x, out, 0, **options)
    ours = out.attr[0].sum(0).double().numpy()
    assert _rel_l1(ours, ref.attribution_mask) <= 1e-5
    assert np.array_equal(out.extras["xrai_segments"][0].numpy(), ref.segments)
    assert out.attr.shape == x.shape and out.attr.dtype == torch.float32
    assert torch.allclose(out.attr[:, :1].expand_as(out.attr), out.attr)  # the same map in every channel
    if options.get("area_threshold", 1.0) == 1.0:  # every pixel holds its region's mean: the channel-max sum stays
        assert ours.sum() == pytest.approx(out.extras["base_attr"].amax(1).sum().item(), rel=1e-4, abs=1e-3)


def test_equals_pair_on_a_real_method_and_keeps_its_record(smooth_model):
    x = _photo("coffee", (40, 56))
    base = attribution.build_method("grad_input", mean=MEAN, std=STD)
    m = XRAI(base)
    out = m.attribute(smooth_model, x, torch.tensor([2]))
    ref = _pair(m, x, out, 0)
    assert _rel_l1(out.attr[0].sum(0).double().numpy(), ref.attribution_mask) <= 1e-5
    assert torch.equal(out.extras["base_attr"], base(smooth_model, x, torch.tensor([2])))
    assert "f_x" in out.extras and out.completeness is None
    assert m.name == "grad_input+xrai" and not m.is_path and m.needs_vae is base.needs_vae
    assert m.cost(64, 64) == base.cost(64, 64) and m.norm is base.norm


def test_unflattened_segments_equal_pairs_masks():
    x = torch.cat([_photo("coffee", (40, 48)), _photo("astronaut", (40, 48))])
    m = XRAI(Synthetic(mean=MEAN, std=STD), flatten_xrai_segments=False)
    out = m.attribute(None, x, torch.tensor([0, 0]))
    segs = out.extras["xrai_segments"]
    assert segs.dtype == torch.bool and segs.shape[0] == 2 and segs.shape[2:] == x.shape[2:]
    for i in range(2):
        ref = _pair(m, x, out, i, flatten_xrai_segments=False).segments
        ours = segs[i].numpy()
        assert np.array_equal(ours[:len(ref)], np.stack(ref)) and not ours[len(ref):].any()


def test_a_batch_equals_each_image_alone():
    noise = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    noise = (noise - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    x = torch.cat([_photo("coffee", (48, 48)), _photo("astronaut", (48, 48)), noise])
    for options in ({}, {"algorithm": "fast"}):
        m = XRAI(Synthetic(mean=MEAN, std=STD), **options)
        batch = m.attribute(None, x, torch.tensor([0, 1, 2]))
        for i in range(len(x)):
            alone = m.attribute(None, x[i:i + 1], torch.tensor([i]))
            assert torch.equal(batch.attr[i], alone.attr[0])
            assert torch.equal(batch.extras["xrai_segments"][i], alone.extras["xrai_segments"][0])


def test_degenerate_inputs_do_not_crash():
    m = XRAI(Synthetic())
    flat = m(None, torch.full((1, 3, 32, 32), 0.5), torch.tensor([0]))  # a constant image: one region per scale
    assert torch.isfinite(flat).all()

    class NaNBase(Synthetic):
        def _attribute(self, model, x, target):
            out = super()._attribute(model, x, target)
            out.attr[0, 0, 0, 0] = float("nan")
            return out

    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    out = XRAI(NaNBase())(None, x, torch.tensor([0, 1]))
    assert torch.isnan(out[0]).all() and torch.isfinite(out[1]).all()


@pytest.mark.parametrize("key,value", [("area_threshold", 1.5), ("area_threshold", -0.1), ("area_threshold", "all"),
                                       ("algorithm", "slow"), ("min_pixel_diff", 0), ("min_pixel_diff", 2.5),
                                       ("flatten_xrai_segments", "yes")])
def test_bad_options_fail_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=f"post.{key}"):
        XRAI(Synthetic(), **{key: value})


def test_unknown_option_and_bad_method_fail():
    with pytest.raises(UnknownOptionError, match="post.steps.*allowed.*post.area_threshold"):
        XRAI(Synthetic(), steps=100)
    with pytest.raises(ConfigError, match="method"):
        XRAI("ig")


def test_missing_scikit_image_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)
    with pytest.raises(ConfigError, match=r"attribution-bench\[xrai\]"):
        XRAI(Synthetic())
