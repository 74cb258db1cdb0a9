"""Ground-truth object masks for the localisation metrics, read from the datasets' own annotation files.

A mask is a PIL ``L`` image of the *original* image's size, 255 on the object and 0 elsewhere; the dataset then
resizes it with the image's own transform (nearest neighbour), so mask and image stay aligned pixel for pixel.

- Oxford-IIIT Pet trimaps (``annotations/trimaps/<image>.png`` of the archive ``annotations.tar.gz``): pixel value
  1 = pet, 2 = background, 3 = the border drawn around the pet. ``trimap_object="pet_and_border"`` (default) counts
  1 and 3 as object: the border is the uncertain outline of the pet itself, and without it the mask is an eroded
  silhouette that misses the fur's edge; ``"pet"`` counts 1 only.
- ImageNet validation boxes (the ILSVRC2012 ``val/<image id>.xml`` files of ``ILSVRC2012_bbox_val_v3.tgz``, or
  ``LOC_val`` XML of the Kaggle copy): the union of the boxes whose ``name`` is the image's class (its wnid), each
  covering pixels ``xmin..xmax`` x ``ymin..ymax`` (inclusive, as the files give them), scaled from the XML's
  ``<size>`` to the image when they differ.
- A box list (the embedded MNIST canvases): ``[x0, y0, x1, y1]`` with exclusive ends.

An image whose annotation file is missing gets an empty mask (its localisation scores are NaN, never a guess) and
a note saying so.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import ConfigError, check_choice

TRIMAP_OBJECTS = {"pet_and_border": (1, 3), "pet": (1,)}


def _to_image(mask: np.ndarray) -> Image.Image:
    return Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), "L")


def box_mask(size: tuple[int, int], boxes: Sequence[Sequence[float]], inclusive: bool = False) -> Image.Image:
    """The union of ``boxes`` ([x0, y0, x1, y1] in pixels; ``inclusive``: x1, y1 are the last pixels covered) on a
    ``size`` = (width, height) canvas."""
    w, h = size
    m = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in boxes:
        e = 1 if inclusive else 0
        c0, r0 = max(0, int(round(x0))), max(0, int(round(y0)))
        c1, r1 = min(w, int(round(x1)) + e), min(h, int(round(y1)) + e)
        m[r0:r1, c0:c1] = True
    return _to_image(m)


def empty_mask(size: tuple[int, int]) -> Image.Image:
    return Image.new("L", size, 0)


# ------------------------------------------------------------------------------------------------------------
# Oxford-IIIT Pet trimaps
# ------------------------------------------------------------------------------------------------------------
def find_trimaps(folder) -> Path:
    """The trimap folder under ``folder``: ``annotations/trimaps``, ``oxford-iiit-pet/annotations/trimaps``,
    ``trimaps``, or ``folder`` itself when it holds the PNGs."""
    p = Path(str(folder)).expanduser()
    for c in (p / "annotations" / "trimaps", p / "oxford-iiit-pet" / "annotations" / "trimaps", p / "trimaps", p):
        if c.is_dir() and any(f.suffix == ".png" for f in c.iterdir()):
            return c
    raise ConfigError(f"dataset.ground_truth={str(folder)!r} has no Pet trimaps: point it at the folder where "
                      f"annotations.tar.gz was extracted (<root>/annotations/trimaps/<image>.png)")


def trimap_mask(path: Path, trimap_object: str = "pet_and_border") -> Image.Image:
    """The object mask of one trimap PNG (values 1 pet, 2 background, 3 border)."""
    check_choice("dataset.trimap_object", trimap_object, TRIMAP_OBJECTS)
    t = np.asarray(Image.open(path))
    if t.ndim == 3:  # a trimap saved as RGB: the value is in every channel
        t = t[..., 0]
    return _to_image(np.isin(t, TRIMAP_OBJECTS[trimap_object]))


class PetTrimaps:
    """``(image id, image size) -> mask`` from the trimaps folder (``<id>.png``)."""

    def __init__(self, folder, trimap_object: str = "pet_and_border"):
        check_choice("dataset.trimap_object", trimap_object, TRIMAP_OBJECTS)
        self.folder, self.trimap_object = find_trimaps(folder), trimap_object

    def __call__(self, image_id: str, size: tuple[int, int], label: int = -1) -> tuple[Image.Image, str | None]:
        f = self.folder / f"{image_id}.png"
        if not f.is_file():
            return empty_mask(size), f"no trimap {f.name}: localisation scores are NaN"
        m = trimap_mask(f, self.trimap_object)
        if m.size != size:  # the archive's trimaps have their image's size; a resized copy is scaled back
            m = m.resize(size, Image.NEAREST)
        return m, None


# ------------------------------------------------------------------------------------------------------------
# ImageNet validation boxes (ILSVRC XML)
# ------------------------------------------------------------------------------------------------------------
def find_box_folder(folder) -> Path:
    """The XML folder under ``folder``: ``val/``, ``Annotations/CLS-LOC/val`` (the Kaggle LOC layout), or
    ``folder`` itself when it holds ``*.xml``."""
    p = Path(str(folder)).expanduser()
    for c in (p / "val", p / "Annotations" / "CLS-LOC" / "val", p):
        if c.is_dir() and any(f.suffix == ".xml" for f in c.iterdir()):
            return c
    raise ConfigError(f"dataset.ground_truth={str(folder)!r} has no ILSVRC box files: point it at the folder where "
                      f"ILSVRC2012_bbox_val_v3.tgz was extracted (<root>/val/ILSVRC2012_val_<n>.xml)")


def ilsvrc_boxes(path: Path, wnid: str | None) -> tuple[tuple[int, int] | None, list[list[float]]]:
    """((width, height) of the XML's ``<size>`` or None, the boxes [xmin, ymin, xmax, ymax] of class ``wnid``;
    every object's when ``wnid`` is None)."""
    root = ET.parse(path).getroot()
    size = root.find("size")
    wh = None
    if size is not None and size.findtext("width") and size.findtext("height"):
        wh = (int(float(size.findtext("width"))), int(float(size.findtext("height"))))
    boxes = []
    for obj in root.iter("object"):
        if wnid is not None and (obj.findtext("name") or "").strip() != wnid:
            continue
        bb = obj.find("bndbox")
        if bb is not None:
            boxes.append([float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
    return wh, boxes


class ImageNetBoxes:
    """``(image id, image size) -> mask``: the union of the boxes of the image's class in ``<id>.xml``."""

    def __init__(self, folder, wnid_of_label: Sequence[str]):
        self.folder, self.wnids = find_box_folder(folder), list(wnid_of_label)

    def __call__(self, image_id: str, size: tuple[int, int], label: int) -> tuple[Image.Image, str | None]:
        f = self.folder / f"{image_id}.xml"
        if not f.is_file():
            return empty_mask(size), f"no box file {f.name}: localisation scores are NaN"
        wh, boxes = ilsvrc_boxes(f, self.wnids[label])
        if not boxes:
            return empty_mask(size), f"{f.name} has no box of class {self.wnids[label]}: localisation scores are NaN"
        if wh is not None and wh != tuple(size):
            sx, sy = size[0] / wh[0], size[1] / wh[1]
            boxes = [[x0 * sx, y0 * sy, x1 * sx, y1 * sy] for x0, y0, x1, y1 in boxes]
        return box_mask(size, boxes, inclusive=True), None


__all__ = ["box_mask", "empty_mask", "trimap_mask", "find_trimaps", "PetTrimaps", "ilsvrc_boxes", "find_box_folder",
           "ImageNetBoxes", "TRIMAP_OBJECTS"]
