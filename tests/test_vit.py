"""Vision transformers: IG on the embedded MNIST ViT equals captum's, completeness, IG2's representation layer on timm
and torchvision ViTs, and the fused attention kernel (scaled dot-product attention) against timm's plain path."""
import pytest
import torch

import attribution
from attribution.classifiers import build_classifier
from attribution.methods.ig2 import find_representation_layer
from benchmarks.assets import embedded

MNIST_NORM = dict(mean=list(embedded.MNIST_MEAN), std=list(embedded.MNIST_STD))


@pytest.fixture(scope="module")
def vit_and_digits(embedded_cache):
    """The embedded ViT (reduced training budget, a private cache) and 8 test digits, normalised."""
    from attribution.datasets import build_dataset

    ck = embedded.resolve_source("embedded:mnist_vit")
    ds = build_dataset("mnist", source=embedded.resolve_source("embedded:mnist_data"), subset_size=8)
    clf = build_classifier("mnist_vit", arch=embedded.MNIST_VIT_ARCH, checkpoint=ck, pretrained=False, in_chans=1,
                           input_size=28, model_kwargs=embedded.MNIST_VIT_KWARGS, **MNIST_NORM)
    x = clf.normalize(torch.stack([ds[i].image for i in range(len(ds))]))
    return clf, x, torch.tensor(ds.labels)


def test_ig_on_the_embedded_vit_equals_captum_left_riemann(vit_and_digits):
    from captum.attr import IntegratedGradients

    clf, x, y = vit_and_digits
    n = 32
    ours = attribution.build_method("ig", n_steps=n, mean=clf.mean, std=clf.std)(clf.model, x, y)
    b = clf.normalize(torch.zeros_like(x))
    prob = lambda inp: torch.softmax(clf.model(inp), -1)  # noqa: E731
    # our n path points are captum's riemann_left over n-1 intervals (alphas k/(n-1), k = 0..n-2)
    ref = IntegratedGradients(prob).attribute(x, baselines=b, target=y, n_steps=n - 1, method="riemann_left")
    err = float((ours - ref).abs().max() / ref.abs().max())
    assert err < 1e-5, err


def test_ig_completeness_on_the_embedded_vit(vit_and_digits):
    """Completeness |sum(attr) - (f(x) - f(x'))| / |f(x) - f(x')| of IG on the trained ViT at the papers' 200 steps.

    - Gauss-Legendre nodes (``rule="gausslegendre"``, same 199 gradients): below 1e-3 on every digit.
    - The papers' left Riemann sum: below 1e-3 on the typical digit, falling with the steps on every digit. Single
      digits stay above it: their path dips (the target probability falls from 0.99 to 0.14 and climbs back to
      0.998), so f(x) - f(x') is ~1e-2 and the relative error is ill-conditioned (measured on the full-budget ViT,
      32 digits: left median 2e-4, max 2.6e-2; Gauss-Legendre median 8e-7, max 3e-4)."""
    clf, x, y = vit_and_digits

    def errors(**kw):
        return attribution.build_method("ig", mean=clf.mean, std=clf.std, **kw).attribute(clf.model, x, y).completeness

    gl, left, left_more = errors(n_steps=200, rule="gausslegendre"), errors(n_steps=200), errors(n_steps=800)
    assert float(gl.max()) < 1e-3, gl
    assert float(left.median()) < 1e-3, left
    assert (left_more < left).all() and float(left_more.median()) < 5e-4


def _set_fused(model, fused: bool):
    for m in model.modules():
        if hasattr(m, "fused_attn"):
            m.fused_attn = fused


def _input_grad(model, x, y, dtype=torch.float32):
    model = model.to(dtype)
    inp = x.to(dtype).clone().requires_grad_(True)
    torch.softmax(model(inp), -1).gather(1, y[:, None]).sum().backward()
    return inp.grad


def test_fused_attention_gradients_equal_timms_plain_path(vit_and_digits):
    """timm's Attention runs F.scaled_dot_product_attention when ``fused_attn`` is on (the default) and the explicit
    softmax(q k^T / sqrt(d)) v otherwise. The input gradients the methods integrate agree to float32 rounding,
    and bit for bit between repeated calls of the same path (CPU)."""
    import copy

    clf, x, y = vit_and_digits
    model = copy.deepcopy(clf.model)
    _set_fused(model, True)
    fused = _input_grad(model, x, y)
    assert torch.equal(fused, _input_grad(model, x, y))  # deterministic
    _set_fused(model, False)
    plain = _input_grad(model, x, y)
    rel = float((fused - plain).abs().max() / plain.abs().max())
    assert rel < 1e-5, rel
    ref64 = _input_grad(copy.deepcopy(model), x, y, torch.float64)  # both are float32 roundings of this
    for g in (fused, plain):
        assert float((g.double() - ref64).abs().max() / ref64.abs().max()) < 1e-5
    attr = {}
    for on in (True, False):
        _set_fused(model, on)
        attr[on] = attribution.build_method("ig", n_steps=16, mean=clf.mean, std=clf.std)(model.float(), x, y)
    assert float((attr[True] - attr[False]).abs().max() / attr[False].abs().max()) < 1e-5


def test_ig2_finds_the_representation_layer_of_timm_and_torchvision_vits():
    import timm
    import torchvision

    tv = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=1, num_heads=2, hidden_dim=16,
                                              mlp_dim=32, num_classes=5).eval()
    assert find_representation_layer(tv)[0] == "heads.head"  # the SIG authors' hook
    tm = timm.create_model("test_vit", pretrained=False, img_size=32, patch_size=8, num_classes=5).eval()
    name, layer = find_representation_layer(tm)
    assert name == "head" and layer is tm.get_classifier()
    seen = []
    hook = layer.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        tm(x)
        pre = tm.forward_head(tm.forward_features(x), pre_logits=True)
    hook.remove()
    assert torch.allclose(seen[0], pre)  # the head's input = timm's pre-logits features
    assert find_representation_layer(tm, "fc_norm")[0] == "fc_norm"  # or any module, by name
    for model in (tv, tm):
        m = attribution.build_method("ig2", steps=3, n_references=1)
        attr = m(model, x, torch.tensor([0, 1]))
        assert attr.shape == x.shape and torch.isfinite(attr).all()


def test_tables_place_the_vit_first_and_label_it():
    from benchmarks.report.names import display_model, model_order

    assert model_order(["inception_v1", "vgg16", "vit_b16", "resnet18"]) == ["vit_b16", "resnet18", "vgg16",
                                                                            "inception_v1"]
    assert display_model("vit_b16") == display_model("vit_b_16") == "ViT-B/16"
