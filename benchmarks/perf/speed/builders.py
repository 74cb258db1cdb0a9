"""What the benchmark runs on: random-weight classifiers and VAEs (nothing downloaded), smooth random images, and
the keywords of the methods and metrics it builds."""
from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

import torch

from ...run.config import CONFIG_DIR
from .cli import Config

MODEL_CONFIGS = Path(CONFIG_DIR) / "model"
#: models without a config of their own (``tiny``, other timm names) are normalised as this one is
STAND_IN_MODEL = "resnet18"


def model_config(name: str) -> dict[str, Any]:
    """``configs/model/<name>.yaml`` as a dict ({} when there is none); of a global config (vit_b16, which also
    sets the dataset's image size), its ``model`` section."""
    import yaml

    path = MODEL_CONFIGS / f"{name}.yaml"
    cfg = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    return cfg["model"] if isinstance(cfg.get("model"), dict) and "arch" not in cfg else cfg


def model_norm(name: str) -> tuple:
    """(mean, std) of model ``name``'s input normalisation, from its config (3-channel models), else from
    :data:`STAND_IN_MODEL`'s."""
    cfg = model_config(name)
    if len(cfg.get("mean") or ()) != 3:
        cfg = model_config(STAND_IN_MODEL)
    return tuple(float(v) for v in cfg["mean"]), tuple(float(v) for v in cfg["std"])


def build_model(name: str, num_classes: int, device: torch.device, channels_last: bool, seed: int = 0):
    """A random-weight classifier in eval mode with frozen parameters (as the harness builds them)."""
    torch.manual_seed(seed)
    cfg_path = MODEL_CONFIGS / f"{name}.yaml"
    if name == "tiny":
        import timm

        model = timm.create_model("test_resnet", pretrained=False, num_classes=num_classes)
    elif cfg_path.exists() and name not in ("mnist_cnn", "timm", "torchvision"):
        from attribution.classifiers import build_classifier

        cfg = model_config(name)
        cfg.update(pretrained=False, checkpoint=None, num_classes=num_classes, in_chans=3)
        cfg["mean"], cfg["std"] = model_norm(name)  # one-channel models (mnist_vit) run on RGB images here
        model = build_classifier(**cfg).model
    else:
        import timm

        model = timm.create_model(name, pretrained=False, num_classes=num_classes)
    model = model.eval().requires_grad_(False).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def smooth_images(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    """Random pictures in [0, 1] (a few smooth blobs plus mild noise), so blur/WebP/SVD see image-like content."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(batch, 3, 4, 4, generator=g)
    mid = torch.rand(batch, 3, max(2, size // 8), max(2, size // 8), generator=g)
    up = torch.nn.functional.interpolate
    pix = 0.6 * up(low, size=(size, size), mode="bicubic", align_corners=False)
    pix = pix + 0.3 * up(mid, size=(size, size), mode="bilinear", align_corners=False)
    pix = pix + 0.1 * torch.rand(batch, 3, size, size, generator=g)
    return pix.clamp(0, 1)


def normalize(pix: torch.Tensor, model: str = STAND_IN_MODEL) -> torch.Tensor:
    """Pixels in [0, 1] -> model ``model``'s normalised input (:func:`model_norm`)."""
    mean, std = model_norm(model)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (pix - m.to(pix)) / s.to(pix)


def build_vae(kind: str, device: torch.device, seed: int = 0, channels_last: bool = False):
    """A diffusers AutoencoderKL with random weights wrapped in the library's VAEAdapter (nothing downloaded);
    ``channels_last``: its convolution weights in NHWC (cuDNN's faster layout on GPUs; the maths is unchanged)."""
    from diffusers import AutoencoderKL

    from attribution.vae import VAEAdapter

    torch.manual_seed(seed)
    if kind == "sd":
        net = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(128, 256, 512, 512),
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            layers_per_block=2, latent_channels=4, norm_num_groups=32, sample_size=256)
    else:
        net = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(16, 32, 32, 32),
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            layers_per_block=1, latent_channels=4, norm_num_groups=8, sample_size=64)
    net = net.to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return VAEAdapter(net, kind="kl", name=f"random AutoencoderKL ({kind})", source=None)


def _params(factory) -> dict[str, inspect.Parameter]:
    """The factory's keyword options along its class hierarchy (the registry's view)."""
    from attribution.registry import option_parameters

    return dict(option_parameters(factory) or {})


def method_kwargs(name: str, cfg: Config, vae, warm: bool = False, chunk_rows: int | None = None):
    """Keyword arguments of ``build_method(name, ...)`` for this benchmark (``warm``: a short warm-up config)."""
    import attribution

    factory = attribution.METHODS.get(name)
    params = _params(factory)
    kw: dict[str, Any] = {}
    if "mean" in params:
        mean, std = model_norm(cfg.model)
        kw.update(mean=mean, std=std)
    if "n_steps" in params:
        kw["n_steps"] = cfg.n_steps
    if "steps" in params:
        kw["steps"] = cfg.n_steps + 1  # IG2: the authors' 201 for N = 200
    if "max_batch" in params and cfg.max_batch:
        kw["max_batch"] = cfg.max_batch
    if "autocast" in params and cfg.autocast != "none":
        kw["autocast"] = cfg.autocast
    if "num_classes" in params:
        kw["num_classes"] = cfg.num_classes
    if attribution.method_info(name).needs_vae or "vae" in params:
        kw["vae"] = vae
    kw.update(cfg.overrides.get(name, {}))
    if warm:
        rows = chunk_rows or 32
        short = max(3, -(-rows // max(1, cfg.batch)) + 2)
        if "n_steps" in kw:
            kw["n_steps"] = min(kw["n_steps"], short)
        if "steps" in kw:
            kw["steps"] = min(kw["steps"], 3)
        if "max_iter" in params:
            kw["max_iter"] = min(kw.get("max_iter") or 3, 3)
        if "max_iterations" in params:
            kw["max_iterations"] = min(kw.get("max_iterations", 1), 1)
    return kw


def metric_kwargs(name: str, cfg: Config) -> dict[str, Any]:
    import attribution
    from attribution.registry import takes_option

    factory = attribution.METRICS.get(name)
    params = _params(factory)
    kw: dict[str, Any] = {}
    if takes_option(factory, "mean"):
        mean, std = model_norm(cfg.model)
        kw.update(mean=mean, std=std)
    if name == "pic":
        kw["min_pred_value"] = 0.0  # random weights: keep every image (the work, not the score, is measured)
    if "max_batch" in params and cfg.max_batch:
        kw["max_batch"] = cfg.max_batch
    kw.update(cfg.overrides.get(name, {}))
    return kw


def metric_levels(metric, name: str, shape) -> int | None:
    """Perturbed images per image ("levels") of a perturbation metric, for the equivalent-work comparison."""
    _, c, h, w = shape
    if name == "diffid":
        return 2 * len(metric.ratios)
    if name == "insertion_deletion":
        return 2 * (metric.n_steps(h, w) + 1)
    if name == "pic":
        return 2 + len(metric.thresholds)
    if name.startswith("quantus") and getattr(metric, "metric_name", "") == "PixelFlipping":
        fis = metric.quantus_kwargs(shape)["features_in_step"]
        return int(math.ceil(c * h * w / fis))
    return None
