"""Classifiers: any timm model by name (hub weights or a local checkpoint), torchvision's GoogLeNet for the papers'
Inception-v1, and the authors' fine-tuned heads for Oxford-IIIT Pet and Oxford 102 Flower.

    from attribution.classifiers import build_classifier
    clf = build_classifier("resnet18", arch="resnet18.tv_in1k", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                           input_size=256)                       # keys of configs/model/resnet18.yaml
    logits = clf.model(clf.normalize(pixels))                    # the runner normalises; methods get mean/std

Every config names its normalisation (``mean``, ``std``) and ``input_size``: nothing is guessed. ``"timm"`` is an
explicit value that copies them from the timm pretrained config of ``arch``.

The papers' models (docs/upstream_methods.md section 7):

- ``resnet18``: timm ``resnet18.tv_in1k`` (torchvision's IMAGENET1K_V1 weights; timm's ResNet has torchvision's
  parameter names, so the authors' checkpoints load as they are). Pet/Flowers head: ``fc = Linear(512, C)``.
- ``vgg16``: timm ``vgg16.tv_in1k``. timm runs the classifier as convolutions, which at 256x256 input would give
  a 2x2 map instead of torchvision's AdaptiveAvgPool2d(7) -> Linear; a pre-hook pools the features to 7x7 first,
  so the model computes exactly torchvision's function at every input size. Pet/Flowers head (the authors'):
  ``features -> AdaptiveAvgPool2d(7) -> flatten -> Linear(25088,150) -> BatchNorm1d(150) -> ReLU -> Dropout(0.5)
  -> Linear(150,C)``, with torchvision's parameter names (``features.*``, ``classifier.*``).
- ``inception_v1``: torchvision ``googlenet`` IMAGENET1K_V1 with ``transform_input=True`` (as torchvision forces
  with pretrained weights; the model re-maps the ImageNet-normalised input itself) and the auxiliary heads
  removed. Pet/Flowers head: ``fc = Linear(1024, C)``.
- ``vit_b16`` (the SIG authors' fourth model): torchvision ``vit_b_16`` IMAGENET1K_V1 at 224x224 (its patch grid
  is fixed), ImageNet mean/std. Pet/Flowers head: ``heads.head = Linear(768, C)``.

Any other model by name: ``arch`` is a timm name (``library: timm``) or a torchvision builder name (``library:
torchvision``); ``mean``/``std``/``input_size`` may be the library's name (``'timm'``: its pretrained config;
``'torchvision'``: the weights' eval transform). ``pretrained``: true (timm's default tag, torchvision's DEFAULT
weights), false, or for torchvision a weights name (``IMAGENET1K_V1``). Under ``HF_HUB_OFFLINE=1`` pretrained
weights come from the local caches only (the hub cache, torch.hub's ``checkpoints/``); when they are not there
the build fails at once with a ConfigError naming ``model.checkpoint``, instead of trying the network.

Checkpoints: a plain state dict, or a dict holding one under ``model_state_dict`` (the authors' and
``scripts/finetune_head.py``'s format), ``state_dict``, ``model`` or ``state_dict_ema``; ``.safetensors`` too.
The number of classes and the head layout are read from the checkpoint when the config leaves them open.
"""
from __future__ import annotations

import difflib
import os
import pickle
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import ConfigError, check

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LIBRARIES = ("timm", "torchvision")
HEADS = ("paper", "timm")


@dataclass
class Classifier:
    """A classifier ready for attribution: ``model`` (eval mode, parameters frozen) maps the *normalised* input
    ``(pixels - mean) / std`` of shape [B, in_chans, input_size, input_size] to logits [B, num_classes]."""

    model: nn.Module
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: int
    num_classes: int
    name: str
    in_chans: int = 3
    info: dict[str, Any] = field(default_factory=dict)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        m = torch.tensor(self.mean, dtype=pixels.dtype, device=pixels.device).view(-1, 1, 1)
        s = torch.tensor(self.std, dtype=pixels.dtype, device=pixels.device).view(-1, 1, 1)
        return (pixels - m) / s

    def to(self, *args, **kwargs) -> Classifier:
        self.model.to(*args, **kwargs)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# ------------------------------------------------------------------------------------------------------------
# Architectures
# ------------------------------------------------------------------------------------------------------------
class VGGPaperHead(nn.Module):
    """The authors' VGG head for Pet/Flowers on timm VGG features, with torchvision's parameter names:
    features -> AdaptiveAvgPool2d(7) -> flatten -> Linear(512*49, hidden) -> BatchNorm1d -> ReLU -> Dropout ->
    Linear(hidden, C)."""

    def __init__(self, features: nn.Module, num_classes: int, hidden: int = 150, dropout: float = 0.5,
                 in_features: int = 512 * 7 * 7):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(True),
                                        nn.Dropout(dropout), nn.Linear(hidden, num_classes))
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _pool_to_7(module: nn.Module, args):
    """Forward pre-hook on timm VGG ``pre_logits``: torchvision's AdaptiveAvgPool2d((7, 7)) before the classifier."""
    (x,) = args
    if x.shape[-2:] != (7, 7):
        x = F.adaptive_avg_pool2d(x, (7, 7))
    return (x,)


def _is_vgg(model: nn.Module) -> bool:
    return type(model).__name__ == "VGG" and hasattr(model, "pre_logits") and hasattr(model, "features")


def _timm_arch(arch: str) -> str:
    import timm

    base = arch.split(".", 1)[0]
    if not timm.is_model(base):
        close = difflib.get_close_matches(base, timm.list_models(), n=3)
        raise ConfigError(f"invalid model.arch={arch!r}: timm has no such model" +
                          (f"; did you mean {close}?" if close else ""))
    return arch


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set (to anything but 0/false/no): weights come from local caches only."""
    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    if env and env not in ("0", "false", "no", "off"):
        return True
    try:
        import huggingface_hub.constants as hc
    except ImportError:  # pragma: no cover - timm depends on it
        return False
    return bool(getattr(hc, "HF_HUB_OFFLINE", False))


def _no_weights(what: str, where: str) -> ConfigError:
    return ConfigError(f"offline (HF_HUB_OFFLINE is set) and the pretrained weights of {what} are not in the local "
                       f"cache ({where}). Set model.checkpoint to a local weights file (a timm/torchvision state "
                       f"dict, or a {{'model_state_dict': ...}} checkpoint), or fetch them once with network")


def _torch_hub_file(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url.split("?", 1)[0])


def _check_timm_weights_cached(arch: str) -> None:
    """Offline: raise at once unless timm will find ``arch``'s pretrained weights in a local cache."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch)
    if cfg is None:
        raise ConfigError(f"model.arch={arch!r}: timm has no pretrained weights for it; set model.checkpoint to a "
                          f"local weights file or model.pretrained=false")
    if cfg.file and Path(cfg.file).is_file():
        return
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo, _, rev = cfg.hf_hub_id.partition("@")
        names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin",
                                                                    "open_clip_pytorch_model.bin"]
        if any(isinstance(try_to_load_from_cache(repo, n, revision=rev or None), str) for n in names):
            return
        raise _no_weights(f"timm model.arch={arch!r}", f"hub repo {repo!r}")
    if cfg.url and _torch_hub_file(cfg.url).is_file():
        return
    raise _no_weights(f"timm model.arch={arch!r}", str(_torch_hub_file(cfg.url)) if cfg.url else "no source")


def torchvision_weights(arch: str, pretrained: bool | str = True):
    """The torchvision weights enum entry of ``arch`` (``pretrained``: True = DEFAULT, or a name such as
    ``'IMAGENET1K_V1'``); a ConfigError names the choices."""
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(arch)
    except (ValueError, KeyError):
        raise ConfigError(f"invalid model.arch={arch!r} for model.library='torchvision': choose one of "
                          f"{torchvision.models.list_models()[:20]}...") from None
    name = "DEFAULT" if pretrained is True else str(pretrained)
    try:
        return enum[name] if name != "DEFAULT" else enum.DEFAULT
    except KeyError:
        raise ConfigError(f"invalid model.pretrained={pretrained!r} for torchvision {arch!r}: true (DEFAULT) or one "
                          f"of {[w.name for w in enum]}") from None


def _torchvision_state_dict(arch: str, weights) -> dict[str, torch.Tensor]:
    if offline() and not _torch_hub_file(weights.url).is_file():
        raise _no_weights(f"torchvision {arch!r} {weights.name}", str(_torch_hub_file(weights.url)))
    try:
        return weights.get_state_dict(progress=True)
    except Exception as err:
        raise ConfigError(
            f"could not fetch torchvision's {arch} {weights.name} weights ({type(err).__name__}: {str(err)[:200]}). "
            f"Offline? Set model.checkpoint to a local copy of {weights.url!r} (or any {arch} state dict)") from err


def create_model(arch: str, library: str = "timm", num_classes: int | None = None, head: str | None = None,
                 pretrained: bool | str = False, in_chans: int = 3, model_kwargs: dict[str, Any] | None = None
                 ) -> nn.Module:
    """Build the bare network (train mode). ``head='paper'`` puts the authors' head on VGG when ``num_classes``
    differs from the pretrained head's; otherwise a new plain Linear head (timm's ``reset_classifier``; the last
    Linear for torchvision models) replaces it. ``pretrained=True`` fetches the hub weights (network)."""
    check(library in LIBRARIES, "model.library", library, f"one of {list(LIBRARIES)}")
    check(head is None or head in HEADS, "model.head", head, f"null or one of {list(HEADS)}")
    return adapt_head(_create_base(arch, library, pretrained, in_chans, dict(model_kwargs or {})), num_classes, head)


def adapt_head(model: nn.Module, num_classes: int | None, head: str | None = None) -> nn.Module:
    """Give ``model`` a ``num_classes``-way head (unchanged when it already has one)."""
    if num_classes is None or num_classes == _num_outputs(model, 3, probe=False):
        return model
    if _is_vgg(model) and head == "paper":
        return VGGPaperHead(model.features, num_classes)
    if hasattr(model, "reset_classifier"):
        model.reset_classifier(num_classes)
        return model
    lin = _last_linear(model)
    if lin is None:
        raise ConfigError(f"model.num_classes={num_classes}: no Linear head found on {type(model).__name__}")
    (parent, attr), old = lin
    setattr(parent, attr, nn.Linear(old.in_features, num_classes))
    if isinstance(getattr(model, "num_classes", None), int):  # torchvision ViT keeps its class count here
        model.num_classes = num_classes
    return model


def _create_base(arch: str, library: str, pretrained: bool | str, in_chans: int, kwargs: dict[str, Any]) -> nn.Module:
    if library == "torchvision":
        return _create_torchvision(arch, pretrained, kwargs)
    import timm

    _timm_arch(arch)
    if pretrained and offline():
        _check_timm_weights_cached(arch)
    try:
        model = timm.create_model(arch, pretrained=bool(pretrained), in_chans=in_chans, **kwargs)
    except Exception as err:
        if not pretrained:
            raise ConfigError(f"could not build timm model.arch={arch!r} with model.model_kwargs={kwargs}: "
                              f"{type(err).__name__}: {err}") from err
        raise ConfigError(
            f"could not fetch the pretrained weights of model.arch={arch!r} from the hub ({type(err).__name__}: "
            f"{str(err)[:200]}). Offline? Set model.checkpoint to a local weights file (a timm/torchvision state "
            f"dict, or a {{'model_state_dict': ...}} checkpoint)") from err
    if _is_vgg(model):
        model.pre_logits.register_forward_pre_hook(_pool_to_7)
    return model


def _create_torchvision(arch: str, pretrained: bool | str, kwargs: dict[str, Any]):
    import torchvision

    if arch == "googlenet":
        kwargs.setdefault("transform_input", True)
        model = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False, **kwargs)
        if pretrained:
            model.load_state_dict(_torchvision_state_dict(arch, torchvision_weights(arch, pretrained)))
        model.aux_logits = False  # as upstream: the auxiliary heads are dropped after loading
        model.aux1 = None
        model.aux2 = None
        return model
    try:
        builder = torchvision.models.get_model_builder(arch)
    except ValueError:
        raise ConfigError(f"invalid model.arch={arch!r} for model.library='torchvision': choose one of "
                          f"{torchvision.models.list_models()[:20]}...") from None
    weights = torchvision_weights(arch, pretrained) if pretrained else None
    try:  # built without weights, then loaded: one download path (with the offline check) for every model
        model = builder(weights=None, **({"num_classes": len(weights.meta["categories"])} if weights else {}),
                        **kwargs)
    except Exception as err:
        raise ConfigError(f"could not build torchvision model.arch={arch!r} with model.model_kwargs={kwargs}: "
                          f"{type(err).__name__}: {str(err)[:200]}") from err
    if weights is not None:
        model.load_state_dict(_torchvision_state_dict(arch, weights))
    return model


def _last_linear(model: nn.Module):
    last = None
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            parent_name, _, attr = name.rpartition(".")
            last = ((model.get_submodule(parent_name) if parent_name else model, attr), mod)
    return last


# ------------------------------------------------------------------------------------------------------------
# Checkpoints
# ------------------------------------------------------------------------------------------------------------
_WRAPPER_KEYS = ("model_state_dict", "state_dict_ema", "state_dict", "model")


def read_checkpoint(path: str | os.PathLike, key: str = "model.checkpoint") -> tuple[dict[str, torch.Tensor],
                                                                                            dict[str, Any]]:
    """(state_dict, metadata) of a checkpoint file; metadata holds the non-tensor entries of a wrapping dict."""
    p = Path(os.path.expanduser(str(path)))
    if not p.is_file():
        raise ConfigError(f"{key}={str(path)!r} does not exist (give a local weights file, or null to use the "
                          f"pretrained hub weights)")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p)), {}
    try:
        try:
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # pickled extras (numpy scalars, argparse namespaces) in training checkpoints
            warnings.warn(f"{p.name}: not loadable with weights_only=True; loading it as a full pickle (trusted file)",
                          stacklevel=2)
            obj = torch.load(str(p), map_location="cpu", weights_only=False)
    except Exception as err:
        raise ConfigError(f"{key}={str(path)!r} is not a readable torch checkpoint: {type(err).__name__}: "
                          f"{str(err)[:200]}") from err
    meta: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k in _WRAPPER_KEYS:
            if isinstance(obj.get(k), dict) and obj[k] and all(torch.is_tensor(v) for v in obj[k].values()):
                meta = {m: v for m, v in obj.items() if m not in _WRAPPER_KEYS}
                obj = obj[k]
                break
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise ConfigError(f"{key}={str(path)!r} holds no state dict (expected tensors, or one of "
                          f"{list(_WRAPPER_KEYS)} wrapping them)")
    sd = {k[7:] if k.startswith("module.") else k: v for k, v in obj.items()}
    return sd, meta


def _head_from_state_dict(sd: dict[str, torch.Tensor], model: nn.Module) -> tuple[int | None, str | None]:
    """(num_classes, head layout) the checkpoint was trained with."""
    if "classifier.4.weight" in sd and "classifier.1.running_mean" in sd and sd["classifier.4.weight"].dim() == 2:
        return int(sd["classifier.4.weight"].shape[0]), "paper"  # the authors' VGG head
    names = []
    cfg = getattr(model, "pretrained_cfg", None) or {}
    clf = cfg.get("classifier") if isinstance(cfg, dict) else None
    if clf:
        names += [clf] if isinstance(clf, str) else list(clf)
    names += ["fc", "head.fc", "head", "heads.head", "classifier", "classifier.6"]
    for n in names:
        w = sd.get(f"{n}.weight")
        if w is not None and w.dim() in (2, 4):
            return int(w.shape[0]), None
    return None, None


def _convert_known_layouts(sd: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """torchvision VGG weights (classifier.0/3/6 Linear) -> timm VGG (pre_logits convs, head.fc)."""
    if _is_vgg(model) and "classifier.6.weight" in sd and sd["classifier.0.weight"].dim() == 2:
        from timm.models.vgg import _filter_fn

        return _filter_fn(sd)
    if isinstance(model, nn.Module) and type(model).__name__ == "GoogLeNet":
        return {k: v for k, v in sd.items() if not k.startswith(("aux1.", "aux2."))}
    return sd


def load_weights(model: nn.Module, sd: dict[str, torch.Tensor], key: str = "model.checkpoint",
                 path: str = "") -> None:
    """Strict load; a mismatch raises a ConfigError naming ``key`` and listing what differs."""
    sd = _convert_known_layouts(sd, model)
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [(k, tuple(sd[k].shape), tuple(own[k].shape)) for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {missing[:4]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[:4]}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es) (key, checkpoint, model), e.g. {shapes[:3]}")
        raise ConfigError(f"{key}={path!r} does not match the model ({type(model).__name__}): " + "; ".join(parts)
                          + ". Check model.arch / model.num_classes / model.in_chans / model.head")
    model.load_state_dict(sd, strict=True)


# ------------------------------------------------------------------------------------------------------------
def _stats(value, key: str, arch: str, library: str, field_name: str, n: int, pretrained=True):
    if isinstance(value, str) and value == "torchvision":
        if library != "torchvision":
            raise ConfigError(f"{key}='torchvision' needs model.library='torchvision'")
        tf = torchvision_weights(arch, pretrained if isinstance(pretrained, str) else True).transforms()
        if field_name == "input_size":
            return int(tf.crop_size[0])
        return tuple(float(x) for x in getattr(tf, field_name))[:n]
    if isinstance(value, str) and value == "timm":
        if library != "timm":
            raise ConfigError(f"{key}='timm' needs model.library='timm'")
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(arch)
        if cfg is None:
            raise ConfigError(f"{key}='timm': timm has no pretrained config for model.arch={arch!r}; give it")
        v = getattr(cfg, field_name)
        return v[-1] if field_name == "input_size" else tuple(float(x) for x in v)[:n]
    if value is None:
        raise ConfigError(f"{key} is required: every model config names its normalisation and input size "
                          f"('timm' / 'torchvision' copies it from the library's pretrained config)")
    if field_name == "input_size":
        check(isinstance(value, int) and value > 0, key, value, "a positive integer")
        return value
    try:
        t = tuple(float(x) for x in value)
    except TypeError:
        raise ConfigError(f"invalid {key}={value!r}: a list of {n} floats") from None
    check(len(t) == n, key, value, f"{n} value(s), one per input channel")
    if field_name == "std":
        check(all(x > 0 for x in t), key, value, "every entry > 0")
    return t


def build_classifier(name: str, arch: str | None = None, library: str = "timm", pretrained: bool | str = True,
                     checkpoint: str | None = None, num_classes: int | None = None, head: str | None = None,
                     in_chans: int = 3, mean: Sequence[float] | str | None = None,
                     std: Sequence[float] | str | None = None, input_size: int | str | None = None,
                     model_kwargs: dict[str, Any] | None = None, **unknown) -> Classifier:
    """Build a :class:`Classifier`; the keyword names are the keys of ``configs/model/<name>.yaml``.

    ``arch``: the timm model name (default: ``name``) or torchvision's (``library: torchvision``).
    ``checkpoint``: a local weights file; when given, nothing is downloaded. Otherwise ``pretrained: true`` takes
    the hub weights. ``num_classes``/``head``: null = as the checkpoint has them (or the pretrained 1000).
    ``mean``/``std``/``input_size``: required (or ``'timm'`` / ``'torchvision'``: from the library's pretrained
    config).
    """
    if unknown:
        allowed = ["name", "arch", "library", "pretrained", "checkpoint", "num_classes", "head", "in_chans", "mean",
                   "std", "input_size", "model_kwargs"]
        raise ConfigError(f"model {name!r} got unknown option(s) {sorted(unknown)}; allowed: {allowed}")
    arch = arch or name
    check(library in LIBRARIES, "model.library", library, f"one of {list(LIBRARIES)}")
    check(isinstance(in_chans, int) and in_chans > 0, "model.in_chans", in_chans, "a positive integer")
    check(num_classes is None or (isinstance(num_classes, int) and num_classes > 0), "model.num_classes",
          num_classes, "a positive integer or null (from the checkpoint)")
    if library == "timm":
        _timm_arch(arch)
    check(isinstance(pretrained, bool) or (library == "torchvision" and isinstance(pretrained, str)),
          "model.pretrained", pretrained, "true or false (torchvision: also a weights name, e.g. IMAGENET1K_V1)")
    mean_t = _stats(mean, "model.mean", arch, library, "mean", in_chans, pretrained)
    std_t = _stats(std, "model.std", arch, library, "std", in_chans, pretrained)
    size = _stats(input_size, "model.input_size", arch, library, "input_size", in_chans, pretrained)
    if checkpoint is not None and str(checkpoint).startswith("embedded:"):
        raise ConfigError(f"model.checkpoint={checkpoint!r} is an embedded asset: resolve it first with "
                          f"benchmarks.assets.embedded.resolve_source (the runner does this)")

    info: dict[str, Any] = {"arch": arch, "library": library, "checkpoint": checkpoint,
                            "pretrained": bool(pretrained and checkpoint is None)}
    if checkpoint is not None:
        sd, meta = read_checkpoint(checkpoint)
        check(head is None or head in HEADS, "model.head", head, f"null or one of {list(HEADS)}")
        base = _create_base(arch, library, False, in_chans, dict(model_kwargs or {}))
        ck_classes, ck_head = _head_from_state_dict(_convert_known_layouts(sd, base), base)
        if num_classes is not None and ck_classes is not None and ck_classes != num_classes:
            raise ConfigError(f"model.num_classes={num_classes} but model.checkpoint={str(checkpoint)!r} has a "
                              f"{ck_classes}-class head")
        if ck_head == "paper" and _is_vgg(base):
            model = VGGPaperHead(base.features, ck_classes)  # the authors' head, whatever model.head says
        else:
            model = adapt_head(base, num_classes or ck_classes, head)
        load_weights(model, sd, "model.checkpoint", str(checkpoint))
        for k, v in meta.items():  # the checkpoint's own record (dataset, epoch, accuracy...), never overriding
            if isinstance(v, (str, int, float, bool)):
                info.setdefault(k, v)
    else:
        model = create_model(arch, library, num_classes, head, pretrained, in_chans, model_kwargs)
        if num_classes is not None and pretrained and num_classes != 1000:
            warnings.warn(f"model {name!r}: a new {num_classes}-class head on pretrained features is untrained; "
                          f"set model.checkpoint to a fine-tuned checkpoint (scripts/finetune_head.py)", stacklevel=2)
    model.eval().requires_grad_(False)
    n_out = _num_outputs(model, in_chans)
    info["head"] = "paper (Linear-BN-ReLU-Dropout-Linear)" if isinstance(model, VGGPaperHead) else "linear"
    return Classifier(model=model, mean=mean_t, std=std_t, input_size=size, num_classes=n_out, name=name,
                      in_chans=in_chans, info=info)


def _num_outputs(model: nn.Module, in_chans: int, probe: bool = True) -> int | None:
    n = getattr(model, "num_classes", None)
    if isinstance(n, int) and n > 0:
        return n
    fc = getattr(model, "fc", None)
    if isinstance(fc, nn.Linear):
        return fc.out_features
    lin = _last_linear(model)
    if lin is not None:
        return lin[1].out_features
    if not probe:
        return None
    with torch.no_grad():
        return int(model(torch.zeros(1, in_chans, 64, 64)).shape[-1])


__all__ = ["Classifier", "build_classifier", "create_model", "adapt_head", "read_checkpoint", "load_weights",
           "VGGPaperHead", "offline", "torchvision_weights",
           "IMAGENET_MEAN", "IMAGENET_STD"]
