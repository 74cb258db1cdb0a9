"""Ground-truth masks from the datasets' own annotation files, on tiny folders in the real layouts written here:
Oxford-IIIT Pet trimaps and ILSVRC validation box XML."""
import numpy as np
import pytest
import torch
from PIL import Image

from attribution import ConfigError
from attribution.datasets import EvalDataset, build_dataset

TENCH, GOLDFISH = "n01440764", "n01443537"  # ImageNet labels 0 and 1


def _pet_folder(root, with_trimaps=("Abyssinian_1", "beagle_1")):
    """images/*.jpg (20 x 12, grey) and annotations/trimaps/*.png: pet (1) in columns 4..9, its border (3) in
    columns 2..3 and 10..11, background (2) elsewhere."""
    (root / "images").mkdir(parents=True)
    (root / "annotations" / "trimaps").mkdir(parents=True)
    t = np.full((12, 20), 2, np.uint8)
    t[:, 4:10], t[:, 2:4], t[:, 10:12] = 1, 3, 3
    for name in ("Abyssinian_1", "Abyssinian_2", "beagle_1"):
        Image.fromarray(np.full((12, 20, 3), 128, np.uint8)).save(root / "images" / f"{name}.jpg")
        if name in with_trimaps:
            Image.fromarray(t).save(root / "annotations" / "trimaps" / f"{name}.png")
    return t


def test_pet_trimaps_give_the_pet_mask_resized_with_the_image(tmp_path):
    t = _pet_folder(tmp_path)
    ds = build_dataset("oxford_pet", source=str(tmp_path), split="all", image_size=None, ground_truth=str(tmp_path))
    assert ds.has_masks and ds.ids == ["Abyssinian_1", "Abyssinian_2", "beagle_1"]
    s = ds[0]
    assert s.mask.shape == (1, 12, 20) and s.mask.dtype == torch.bool
    assert torch.equal(s.mask[0], torch.from_numpy(np.isin(t, (1, 3))))  # pet and border
    pet = build_dataset("oxford_pet", source=str(tmp_path), split="all", image_size=None,
                        ground_truth=str(tmp_path / "annotations" / "trimaps"), trimap_object="pet")[0]
    assert torch.equal(pet.mask[0], torch.from_numpy(t == 1))
    # the papers' resize to 10 x 10 (nearest for the mask): columns 4..9 of 20 -> 2..4 of 10
    small = build_dataset("oxford_pet", source=str(tmp_path), split="all", image_size=10, ground_truth=str(tmp_path),
                          trimap_object="pet")[0]
    assert small.image.shape == (3, 10, 10) and small.mask.shape == (1, 10, 10)
    assert small.mask[0].any(0).nonzero().view(-1).tolist() == [2, 3, 4]
    # an image without a trimap: an empty mask (NaN scores) and a note
    s1 = ds[1]
    assert not s1.mask.any() and "no trimap" in s1.note
    assert EvalDataset.collate([ds[0], ds[2]])["masks"].shape == (2, 1, 12, 20)
    assert ds.select([2]).has_masks


def test_pet_ground_truth_errors_name_the_key(tmp_path):
    _pet_folder(tmp_path)
    with pytest.raises(ConfigError, match="dataset.ground_truth=.*no Pet trimaps"):
        build_dataset("oxford_pet", source=str(tmp_path), split="all", ground_truth=str(tmp_path / "images"))
    with pytest.raises(ConfigError, match="dataset.trimap_object"):
        build_dataset("oxford_pet", source=str(tmp_path), split="all", ground_truth=str(tmp_path),
                      trimap_object="cat")
    assert not build_dataset("oxford_pet", source=str(tmp_path), split="all").has_masks
    assert build_dataset("oxford_pet", source=str(tmp_path), split="all")[0].mask is None


_XML = """<annotation><filename>{id}</filename><size><width>{w}</width><height>{h}</height><depth>3</depth></size>
{objects}</annotation>"""
_OBJ = ("<object><name>{wnid}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax>"
        "</bndbox></object>")


def _imagenet_folder(root, w=40, h=20, xml_size=None, box1=(3, 2, 10, 5)):
    """val/<wnid>/<id>.JPEG and boxes/val/<id>.xml: the tench image has two tench boxes and one goldfish box."""
    for wnid, i in ((TENCH, 1), (GOLDFISH, 2)):
        d = root / "val" / wnid
        d.mkdir(parents=True)
        img = np.zeros((h, w, 3), np.uint8)
        img[box1[1]:box1[3] + 1, box1[0]:box1[2] + 1] = 255  # the first tench box, white, for the alignment check
        Image.fromarray(img).save(d / f"ILSVRC2012_val_{i:08d}.JPEG", quality=100)
    (root / "boxes" / "val").mkdir(parents=True)
    xw, xh = xml_size or (w, h)
    objs = [_OBJ.format(wnid=TENCH, x0=box1[0], y0=box1[1], x1=box1[2], y1=box1[3]),
            _OBJ.format(wnid=TENCH, x0=30, y0=10, x1=34, y1=14),
            _OBJ.format(wnid=GOLDFISH, x0=15, y0=0, x1=20, y1=19)]
    (root / "boxes" / "val" / "ILSVRC2012_val_00000001.xml").write_text(
        _XML.format(id="ILSVRC2012_val_00000001", w=xw, h=xh, objects="\n".join(objs)))


def test_imagenet_boxes_give_the_union_of_the_class_boxes(tmp_path):
    _imagenet_folder(tmp_path)
    ds = build_dataset("imagenet", source=str(tmp_path), subset="first", subset_size=None, image_size=None,
                       ground_truth=str(tmp_path / "boxes"))
    s = ds[0]
    assert s.label == 0 and s.mask.shape == (1, 20, 40)
    want = torch.zeros(20, 40, dtype=torch.bool)
    want[2:6, 3:11] = True      # xmin..xmax, ymin..ymax inclusive
    want[10:15, 30:35] = True   # the second tench box; the goldfish box is not the image's class
    assert torch.equal(s.mask[0], want)
    other = ds[1]  # no XML for the goldfish image
    assert not other.mask.any() and "no box file" in other.note


def test_imagenet_boxes_follow_the_timm_transform_and_the_xml_size(tmp_path):
    _imagenet_folder(tmp_path, xml_size=(80, 40))  # an XML made for a 2x larger copy: boxes are scaled down
    ds = build_dataset("imagenet", source=str(tmp_path), subset="first", subset_size=None, image_size=None,
                       ground_truth=str(tmp_path / "boxes"))
    want = torch.zeros(20, 40, dtype=torch.bool)
    want[1:3, 2:6] = True  # (3..10, 2..5) / 2, inclusive ends
    want[5:8, 15:18] = True
    assert torch.equal(ds[0].mask[0], want)
    _imagenet_folder(tmp_path / "b", box1=(16, 6, 23, 13))  # 40 x 20: the centre crop cuts the sides
    timm_ds = build_dataset("imagenet", source=str(tmp_path / "b"), subset="first", subset_size=None,
                            preprocess="timm", timm_model="resnet18.tv_in1k", image_size=16,
                            ground_truth=str(tmp_path / "b" / "boxes"))
    s = timm_ds[0]  # resize + centre crop: mask and image move together
    assert s.image.shape == (3, 16, 16) and s.mask.shape == (1, 16, 16)
    white = s.image.mean(0) > 0.9
    assert white.any() and bool((s.mask[0] | ~white).all())  # every clearly white pixel is in the mask
    assert bool((~s.mask[0] | (s.image.mean(0) > 0.1)).all())  # and the mask covers no black pixel


def test_imagenet_box_folder_errors_name_the_key(tmp_path):
    _imagenet_folder(tmp_path)
    with pytest.raises(ConfigError, match="dataset.ground_truth=.*no ILSVRC box files"):
        build_dataset("imagenet", source=str(tmp_path), subset_size=None, ground_truth=str(tmp_path / "val"))
