"""Classifiers: timm models from local checkpoints, the authors' heads, GoogLeNet, config errors, fine-tuning."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from attribution.classifiers import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VGGPaperHead,
    _pool_to_7,
    build_classifier,
    create_model,
)
from attribution.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
NORM = dict(mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD), input_size=64)


def _tiny(num_classes=10, seed=0):
    import timm

    torch.manual_seed(seed)
    m = timm.create_model("test_resnet", pretrained=False, num_classes=num_classes).eval()
    with torch.no_grad():  # non-trivial BN statistics, so a wrong load would show
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    return m


@pytest.mark.parametrize("wrap", [None, "model_state_dict", "state_dict", "safetensors"])
def test_timm_model_from_a_local_checkpoint(tmp_path, wrap):
    ref = _tiny(num_classes=7)
    sd = ref.state_dict()
    if wrap == "safetensors":
        from safetensors.torch import save_file

        path = tmp_path / "w.safetensors"
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    else:
        path = tmp_path / "w.pt"
        torch.save(sd if wrap is None else {wrap: {"module." + k: v for k, v in sd.items()}, "epoch": 3}, path)
    clf = build_classifier("tiny", arch="test_resnet", checkpoint=str(path), **NORM)
    assert clf.num_classes == 7  # read from the checkpoint's head
    assert not clf.model.training and not any(p.requires_grad for p in clf.model.parameters())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(clf.model(x), ref(x))
    assert clf.mean == IMAGENET_MEAN and clf.input_size == 64 and clf.info["pretrained"] is False
    pix = torch.rand(1, 3, 4, 4)
    assert torch.allclose(clf.normalize(pix), (pix - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) /
                          torch.tensor(IMAGENET_STD).view(3, 1, 1))


def test_checkpoint_errors_name_the_key(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(_tiny(num_classes=7).state_dict(), path)
    with pytest.raises(ConfigError, match=r"model\.num_classes=5.*7-class"):
        build_classifier("tiny", arch="test_resnet", checkpoint=str(path), num_classes=5, **NORM)
    with pytest.raises(ConfigError, match=r"model\.checkpoint=.*does not match the model"):
        build_classifier("r", arch="resnet10t", checkpoint=str(path), **NORM)
    with pytest.raises(ConfigError, match=r"model\.checkpoint=.*does not exist"):
        build_classifier("tiny", arch="test_resnet", checkpoint=str(tmp_path / "none.pt"), **NORM)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ConfigError, match=r"model\.checkpoint"):
        build_classifier("tiny", arch="test_resnet", checkpoint=str(tmp_path / "junk.pt"), **NORM)


def test_config_errors_before_work():
    with pytest.raises(ConfigError, match=r"model\.mean is required"):
        build_classifier("tiny", arch="test_resnet", std=[1, 1, 1], input_size=32, pretrained=False)
    with pytest.raises(ConfigError, match=r"model\.arch.*no such model"):
        build_classifier("x", arch="resnet_does_not_exist", pretrained=False, **NORM)
    with pytest.raises(ConfigError, match=r"model\.std"):
        build_classifier("tiny", arch="test_resnet", mean=[0, 0, 0], std=[1, 1], input_size=32, pretrained=False)
    with pytest.raises(ConfigError, match="unknown option"):
        build_classifier("tiny", arch="test_resnet", pretrained=False, colour=True, **NORM)
    clf = build_classifier("tiny", arch="test_resnet", pretrained=False, mean="timm", std="timm", input_size="timm")
    assert clf.mean == (0.5, 0.5, 0.5) and clf.input_size == 160  # copied from timm's pretrained cfg, on request


def test_offline_pretrained_weights_point_at_model_checkpoint(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True, raising=False)
    with pytest.raises(ConfigError, match=r"model\.checkpoint"):
        build_classifier("resnet18", arch="resnet18.tv_in1k", pretrained=True, **NORM)


def test_timm_vgg_hook_computes_torchvisions_pool_then_linear():
    """At 224 timm's conv classifier equals torchvision's Linear; elsewhere the 7x7 pre-pool makes it so."""
    from timm.models.vgg import VGG

    torch.manual_seed(0)
    m = VGG(cfg=[8, "M", 16, "M"], num_classes=5, mlp_ratio=0.01).eval()
    m.pre_logits.register_forward_pre_hook(_pool_to_7)
    for size in (20, 64):  # feature maps 5x5 (upsampled to 7) and 16x16 (pooled to 7)
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            f = F.adaptive_avg_pool2d(m.features(x), 7).flatten(1)
            h = F.relu(F.linear(f, m.pre_logits.fc1.weight.flatten(1), m.pre_logits.fc1.bias))
            h = F.relu(F.linear(h, m.pre_logits.fc2.weight.flatten(1), m.pre_logits.fc2.bias))
            ref = F.linear(h, m.head.fc.weight, m.head.fc.bias)
            assert torch.allclose(m(x), ref, atol=1e-5, rtol=1e-4)


def test_vgg_paper_head_has_torchvision_names_and_shapes():
    head = VGGPaperHead(torch.nn.Sequential(torch.nn.Conv2d(3, 512, 3, padding=1)), num_classes=37).eval()
    keys = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert keys["classifier.0.weight"] == (150, 25088) and keys["classifier.4.weight"] == (37, 150)
    assert "classifier.1.running_mean" in keys and head(torch.randn(2, 3, 16, 16)).shape == (2, 37)


def test_googlenet_inception_v1_transform_input_and_no_aux(tmp_path):
    tv = create_model("googlenet", library="torchvision")
    assert tv.transform_input and tv.aux1 is None and tv.aux2 is None
    # a torchvision-format state dict (with the aux heads, as IMAGENET1K_V1) loads with the aux keys dropped
    import torchvision

    full = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)
    torch.save(full.state_dict(), tmp_path / "googlenet.pth")
    clf = build_classifier("inception_v1", arch="googlenet", library="torchvision", checkpoint=str(tmp_path /
                           "googlenet.pth"), model_kwargs={"transform_input": True}, **NORM)
    full.eval()
    full.aux_logits = False
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert clf.num_classes == 1000 and torch.allclose(clf.model(x), full(x), atol=1e-5)
    # a Pet head (fc = Linear(1024, 37)), as the authors' checkpoints: the class count comes from the file
    pet = create_model("googlenet", library="torchvision", num_classes=37)
    torch.save({"model_state_dict": pet.state_dict()}, tmp_path / "pet.pt")
    clf = build_classifier("inception_v1", arch="googlenet", library="torchvision",
                           checkpoint=str(tmp_path / "pet.pt"), **NORM)
    assert clf.num_classes == 37


def _pet_folder(root: Path, breeds=("Abyssinian", "beagle", "Bengal"), per=12):
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for bi, b in enumerate(breeds):
        for i in range(1, per + 1):
            arr = rng.integers(0, 60, (40, 40, 3)).astype(np.uint8)
            arr[..., bi] += 180  # a learnable colour cue per breed
            Image.fromarray(arr).save(root / "images" / f"{b}_{i}.jpg")


def test_finetune_script_writes_a_checkpoint_the_config_can_name(tmp_path):
    spec = importlib.util.spec_from_file_location("finetune_head", ROOT / "scripts" / "finetune_head.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    _pet_folder(tmp_path / "pets")
    out = tmp_path / "ck" / "tiny_best.pt"
    summary = mod.main(["--dataset", "oxford_pet", "--source", str(tmp_path / "pets"), "--model", "resnet18",
                        "--arch", "test_resnet", "--no-pretrained", "--epochs", "2", "--batch-size", "8",
                        "--image-size", "32", "--workers", "0", "--device", "cpu", "--out", str(out)])
    assert out.is_file() and summary["num_classes"] == 3 and summary["train_images"] > 20
    clf = build_classifier("resnet18", arch="test_resnet", checkpoint=str(out), mean=list(IMAGENET_MEAN),
                           std=list(IMAGENET_STD), input_size=32)
    assert clf.num_classes == 3 and clf.info.get("dataset") == "oxford_pet"


@pytest.mark.slow
def test_vgg16_matches_torchvision_at_256_and_loads_the_authors_head(tmp_path):
    """timm vgg16 + the 7x7 pre-pool == torchvision vgg16 at the papers' 256x256; the authors' Pet checkpoint
    layout (torchvision features + Linear-BN-ReLU-Dropout-Linear classifier) loads strict into the paper head."""
    import torchvision

    torch.manual_seed(0)
    tv = torchvision.models.vgg16(weights=None).eval()
    torch.save(tv.state_dict(), tmp_path / "vgg16-tv.pth")  # torchvision's key layout (classifier.0/3/6)
    clf = build_classifier("vgg16", arch="vgg16.tv_in1k", checkpoint=str(tmp_path / "vgg16-tv.pth"), head="paper",
                           mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD), input_size=256)
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        assert clf.num_classes == 1000 and torch.allclose(clf.model(x), tv(x), atol=1e-5)
    nn = torch.nn
    tv.classifier = nn.Sequential(nn.Linear(25088, 150), nn.BatchNorm1d(150), nn.ReLU(True), nn.Dropout(0.5),
                                  nn.Linear(150, 37)).eval()
    with torch.no_grad():
        tv.classifier[1].running_mean.uniform_(-0.1, 0.1)
    torch.save({"model_state_dict": tv.state_dict(), "epoch": 3}, tmp_path / "vgg16_best.pt")
    pet = build_classifier("vgg16", arch="vgg16.tv_in1k", checkpoint=str(tmp_path / "vgg16_best.pt"), head="paper",
                           mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD), input_size=256)
    assert isinstance(pet.model, VGGPaperHead) and pet.num_classes == 37
    with torch.no_grad():
        assert torch.allclose(pet.model(x), tv(x), atol=1e-5)


#: the configs that name a model by a command-line key (``model.arch=...``): a stand-in name to compose them with
BY_NAME = {"timm": "test_vit", "torchvision": "vit_b_16"}


def _model_section(path):
    """A model config's own keys: the file, or its ``model:`` section for the global ones (vit_b16, timm,
    torchvision also set the dataset's image size / transform)."""
    from omegaconf import OmegaConf

    raw = OmegaConf.load(path)
    return raw.model if "model" in raw and "arch" not in raw else raw


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "model").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_model_config_carries_its_normalisation_and_input_size(path):
    import inspect

    from benchmarks.run.config import compose_config

    over = [f"model={path.stem}"] + ([f"model.arch={BY_NAME[path.stem]}"] if path.stem in BY_NAME else [])
    cfg = compose_config(over)["model"]
    assert set(_model_section(path)) == set(cfg)
    assert cfg["name"] == BY_NAME.get(path.stem, path.stem)
    params = set(inspect.signature(build_classifier).parameters) - {"unknown"}
    assert set(cfg) <= params, set(cfg) - params
    n = cfg.get("in_chans", 3)
    for key in ("mean", "std"):
        assert cfg[key] == cfg["library"] or len(cfg[key]) == n
    assert isinstance(cfg["input_size"], int) or cfg["input_size"] == cfg["library"]


def test_vit_b16_config_is_the_authors_torchvision_vit_at_224():
    from benchmarks.run.config import compose_config

    for ds in ("imagenet", "oxford_pet", "oxford_flowers"):
        cfg = compose_config(["model=vit_b16", f"dataset={ds}"])
        assert cfg["dataset"]["image_size"] == 224 and cfg["dataset"]["preprocess"] == "paper"
        assert cfg["model"]["arch"] == "vit_b_16" and cfg["model"]["pretrained"] == "IMAGENET1K_V1"
    assert compose_config(["model=resnet18", "dataset=imagenet"])["dataset"]["image_size"] == 256  # CNNs unchanged
    kw = {**cfg["model"], "pretrained": False, "num_classes": 37}  # a Pet head on the real architecture
    clf = build_classifier(**kw)
    assert clf.num_classes == 37 and clf.input_size == 224 and clf.mean == IMAGENET_MEAN
    assert tuple(clf.model.heads.head.weight.shape) == (37, 768)
    from attribution.methods.ig2 import find_representation_layer

    assert find_representation_layer(clf.model)[0] == "heads.head"


def test_table1_gains_the_vit_in_the_authors_order_and_preflight_names_its_checkpoint(tmp_path):
    from benchmarks.run import preflight
    from benchmarks.run.config import compose_config, sweep_params

    assert sweep_params(["experiment=table1"])["model"] == ["vit_b16", "vgg16", "resnet18", "inception_v1"]
    cfg = compose_config(["experiment=table1", "model=vit_b16", "dataset=oxford_pet", f"checkpoint_dir={tmp_path}",
                          "method=ig", f"dataset.source={tmp_path}", "device=cpu"])
    assert cfg["model"]["checkpoint"] == f"{tmp_path}/classifier_oxfordpet/vit_best.pt"
    assert cfg["dataset"]["image_size"] == 224
    with pytest.raises(Exception, match=r"model=vit_b16.*vit_best\.pt.*does not exist"):
        preflight([cfg])


def test_any_timm_model_by_name_offline(tmp_path, monkeypatch):
    """model=timm model.arch=...: normalisation, input size and the dataset's eval transform from timm's pretrained
    config; weights from model.checkpoint (a state dict this test writes); offline without a checkpoint, an
    error naming model.checkpoint at once (the hub path is not mocked: its real code fails fast)."""
    import timm

    from benchmarks.run.config import compose_config

    cfg = compose_config(["model=timm", "model.arch=deit_tiny_patch16_224", "dataset=imagenet"])
    assert cfg["model"]["name"] == "deit_tiny_patch16_224"
    assert cfg["dataset"]["preprocess"] == "timm" and cfg["dataset"]["timm_model"] == "deit_tiny_patch16_224"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match=r"offline.*deit_tiny_patch16_224.*model\.checkpoint"):
        build_classifier(**cfg["model"])
    arch = "test_vit"  # a real timm ViT small enough to build here, without weights
    ref = timm.create_model(arch, pretrained=False, num_classes=1000).eval()
    torch.save({"model_state_dict": ref.state_dict()}, tmp_path / "vit.pt")
    cfg = compose_config(["model=timm", f"model.arch={arch}", f"model.checkpoint={tmp_path / 'vit.pt'}"])["model"]
    clf = build_classifier(**cfg)
    assert clf.mean == (0.5, 0.5, 0.5) and clf.input_size == 160 and clf.num_classes == 1000  # timm's cfg
    x = torch.randn(1, 3, 160, 160)
    with torch.no_grad():
        assert torch.equal(clf.model(x), ref(x))
    built = build_classifier(**{**cfg, "checkpoint": None, "pretrained": False})  # built without weights
    assert built.input_size == 160 and built.info["pretrained"] is False
    with pytest.raises(ConfigError, match=r"model\.arch.*no such model"):
        build_classifier(**{**cfg, "arch": "vit_does_not_exist", "checkpoint": None})


def test_any_torchvision_model_by_name_offline(tmp_path, monkeypatch):
    import torchvision

    from benchmarks.run.config import compose_config

    cfg = compose_config(["model=torchvision", "model.arch=mobilenet_v3_small", "dataset=imagenet"])
    assert cfg["dataset"]["image_size"] == 224 and cfg["model"]["mean"] == "torchvision"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty torch.hub cache
    with pytest.raises(ConfigError, match=r"offline.*mobilenet_v3_small.*model\.checkpoint"):
        build_classifier(**cfg["model"])
    ref = torchvision.models.mobilenet_v3_small(weights=None).eval()
    torch.save(ref.state_dict(), tmp_path / "mnv3.pth")
    clf = build_classifier(**{**cfg["model"], "checkpoint": str(tmp_path / "mnv3.pth")})
    assert clf.mean == IMAGENET_MEAN and clf.std == IMAGENET_STD and clf.num_classes == 1000
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(clf.model(x), ref(x))
    with pytest.raises(ConfigError, match=r"model\.pretrained=.*IMAGENET1K_V1"):
        build_classifier(**{**cfg["model"], "pretrained": "IMAGENET9K"})


def test_finetune_script_trains_the_vit_head(tmp_path):
    """heads.head is the trained head of a torchvision ViT (the backbone frozen with --backbone-lr 0)."""
    spec = importlib.util.spec_from_file_location("finetune_head", ROOT / "scripts" / "finetune_head.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import torchvision

    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=16, num_layers=1, num_heads=2,
                                               hidden_dim=16, mlp_dim=16, num_classes=3)
    assert mod._head_params(vit) == list(vit.heads.head.parameters())
    cfg = mod._model_config(mod.argparse.Namespace(model="vit_b16", model_config=None, arch=None, library=None))
    assert cfg["arch"] == "vit_b_16" and cfg["input_size"] == 224 and cfg["library"] == "torchvision"
