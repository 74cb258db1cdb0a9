"""Dataset loaders on small folders the tests write: the papers' protocol, label mapping, bad images, manifests."""
import io
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from attribution.datasets import EvalDataset, build_dataset, convert_mode, dataloader_shuffle_order, pet_paper_split
from attribution.errors import ConfigError

TENCH, ESPRESSO, TOILET_TISSUE = ("n01440764", 0), ("n07920052", 967), ("n15075141", 999)


def _photo(seed, size=(40, 30), mode="RGB"):
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(arr, "RGB").convert(mode)


@pytest.fixture
def imagenet_folder(tmp_path):
    root = tmp_path / "imagenet"
    names = {TENCH: [293, 2138, 17], ESPRESSO: [5, 44], TOILET_TISSUE: [1079]}
    k = 0
    for (wnid, _), nums in names.items():
        (root / "val" / wnid).mkdir(parents=True)
        for n in nums:
            _photo(k).save(root / "val" / wnid / f"ILSVRC2012_val_{n:08d}.JPEG", quality=95)
            k += 1
    return root


# -- the papers' subsets -----------------------------------------------------------------------------------------
def test_dataloader_emulation_matches_a_real_dataloader():
    """docs/upstream_methods.md section 6: iterate DataLoader(shuffle=True, generator=manual_seed(42)) over 50,000."""
    loader = torch.utils.data.DataLoader(range(50000), batch_size=500, shuffle=True,
                                         generator=torch.Generator().manual_seed(42))
    first = next(iter(loader)).tolist()
    assert dataloader_shuffle_order(50000, 42)[:500] == first
    # not the same as a bare randperm: the loader draws a base seed first
    assert torch.randperm(50000, generator=torch.Generator().manual_seed(42)).tolist()[:500] != first
    small = torch.utils.data.DataLoader(range(37), batch_size=37, shuffle=True,
                                        generator=torch.Generator().manual_seed(3))
    assert dataloader_shuffle_order(37, 3) == next(iter(small)).tolist()


def test_pet_split_is_sklearns_over_the_sorted_list():
    from sklearn.model_selection import train_test_split

    names = sorted(f"{b}_{i}.jpg" for b in ("Abyssinian", "beagle", "Bengal") for i in range(1, 30))
    train, val = pet_paper_split(names, 0.05, 42)
    ref_train, ref_val = train_test_split(names, test_size=0.05, random_state=42)
    assert [names[i] for i in val] == ref_val and [names[i] for i in train] == ref_train
    assert len(pet_paper_split(list(range(7390)), 0.05, 42)[1]) == 370  # the papers' 370 of the archive's 7,390


# -- ImageNet -----------------------------------------------------------------------------------------------------
def test_imagenet_folder_protocol_and_labels(imagenet_folder):
    ds = build_dataset("imagenet", source=str(imagenet_folder), subset_size=None)
    # ImageFolder order: wnid folders sorted, files sorted, then the DataLoader shuffle with seed 42
    folder_order = ["ILSVRC2012_val_00000017", "ILSVRC2012_val_00000293", "ILSVRC2012_val_00002138",
                    "ILSVRC2012_val_00000005", "ILSVRC2012_val_00000044", "ILSVRC2012_val_00001079"]
    perm = dataloader_shuffle_order(6, 42)
    assert ds.ids == [folder_order[i] for i in perm]
    labels = dict(zip(ds.ids, ds.labels))
    assert labels["ILSVRC2012_val_00000293"] == 0 and labels["ILSVRC2012_val_00000044"] == 967
    assert labels["ILSVRC2012_val_00001079"] == 999  # standard indices, not 0..K-1 of a partial folder
    assert ds.num_classes == 1000 and ds.class_names[967] == "espresso"
    s = ds[0]
    assert s.image.shape == (3, 256, 256) and s.image.dtype == torch.float32 and s.note is None
    assert 0.0 <= float(s.image.min()) and float(s.image.max()) <= 1.0
    assert len(build_dataset("imagenet", source=str(imagenet_folder), subset_size=4)) == 4


def test_paper_resize_is_pil_bilinear_without_crop(imagenet_folder):
    ds = build_dataset("imagenet", source=str(imagenet_folder), subset="first", subset_size=1)
    path = imagenet_folder / "val" / TENCH[0] / "ILSVRC2012_val_00000017.JPEG"
    ref = np.asarray(Image.open(path).convert("RGB").resize((256, 256), Image.BILINEAR), dtype=np.float32) / 255
    assert torch.equal(ds[0].image, torch.from_numpy(ref).permute(2, 0, 1))


def test_timm_preprocess_uses_the_models_eval_transform(imagenet_folder):
    ds = build_dataset("imagenet", source=str(imagenet_folder), subset_size=2, preprocess="timm",
                       timm_model="tf_efficientnet_lite0", image_size=None)
    assert ds[0].image.shape == (3, 224, 224)
    assert ds.manifest()["protocol"]["timm_config"]["interpolation"] == "bicubic"
    with pytest.raises(ConfigError, match="timm_model"):
        build_dataset("imagenet", source=str(imagenet_folder), preprocess="timm")


def test_hub_style_flat_folder_gives_the_same_ids_and_labels(imagenet_folder, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in (imagenet_folder / "val").rglob("*.JPEG"):
        (flat / f"{f.stem}_{f.parent.name}.JPEG").write_bytes(f.read_bytes())
    a = build_dataset("imagenet", source=str(imagenet_folder), subset_size=None)
    b = build_dataset("imagenet", source=str(flat), subset_size=None)
    assert a.ids == b.ids and a.labels == b.labels
    # the manifest of one source is valid for the other
    c = build_dataset("imagenet", source=str(flat), manifest=a.manifest())
    assert c.ids == a.ids


def test_missing_source_names_the_key_and_the_hub_alternative(tmp_path):
    with pytest.raises(ConfigError, match=r"dataset\.source.*does not exist.*ILSVRC/imagenet-1k"):
        build_dataset("imagenet", source=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"dataset\.source.*timm/oxford-iiit-pet"):
        build_dataset("oxford_pet", source="./no/such/pets")
    with pytest.raises(ConfigError, match="embedded"):
        build_dataset("photos")  # the runner resolves embedded: sources first
    with pytest.raises(ConfigError, match="unknown option"):
        build_dataset("imagenet", source=str(tmp_path), image_sise=3)


# -- bad images -----------------------------------------------------------------------------------------------
def test_odd_modes_are_converted_and_noted_bad_files_skipped_and_noted(tmp_path):
    d = tmp_path / "odd" / "n01440764"
    d.mkdir(parents=True)
    _photo(0).save(d / "ILSVRC2012_val_00000001.JPEG")
    _photo(1).convert("L").save(d / "ILSVRC2012_val_00000002.png")
    _photo(2).convert("RGBA").save(d / "ILSVRC2012_val_00000003.png")
    _photo(3).convert("CMYK").save(d / "ILSVRC2012_val_00000004.jpg")
    _photo(4).convert("P").save(d / "ILSVRC2012_val_00000005.png")
    sixteen = np.full((20, 20), 65535, np.uint16)
    sixteen[:10] = 0
    Image.fromarray(sixteen).save(d / "ILSVRC2012_val_00000006.png")
    buf = io.BytesIO()
    _photo(5, size=(200, 200)).save(buf, "JPEG")
    (d / "ILSVRC2012_val_00000007.JPEG").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (d / "ILSVRC2012_val_00000008.JPEG").write_bytes(b"not an image at all")
    ds = build_dataset("imagenet", source=str(tmp_path / "odd"), subset="first", subset_size=None, image_size=16)
    got = {s.id[-1]: s for s in (ds[i] for i in range(len(ds)))}
    assert got["1"].note is None and got["1"].image.shape == (3, 16, 16)
    assert "grayscale" in got["2"].note and got["2"].image.shape == (3, 16, 16)
    assert "RGBA" in got["3"].note and "alpha" in got["3"].note
    assert "CMYK" in got["4"].note
    assert "palette" in got["5"].note
    assert "16-bit" in got["6"].note
    img6 = got["6"].image
    assert float(img6[:, -1].min()) == 1.0 and float(img6[:, 0].max()) == 0.0  # scaled, not clipped
    assert got["7"].image is None and "truncated" in got["7"].note
    assert got["8"].image is None and "unreadable" in got["8"].note
    batch = EvalDataset.collate([got[k] for k in "12378"])
    assert batch["images"].shape == (3, 3, 16, 16) and batch["ids"][-1].endswith("3")
    assert [i[-1] for i, _ in batch["skipped"]] == ["7", "8"]


def test_convert_mode_one_channel():
    img, note = convert_mode(_photo(0), channels=1)
    assert img.mode == "L" and "RGB" in note


# -- manifests ------------------------------------------------------------------------------------------------
def test_manifest_determinism_and_reuse(imagenet_folder, tmp_path):
    a = build_dataset("imagenet", source=str(imagenet_folder), subset_size=4)
    b = build_dataset("imagenet", source=str(imagenet_folder), subset_size=4)
    assert a.manifest() == b.manifest()
    m = json.loads(json.dumps(a.manifest()))
    assert m["ids"] == a.ids and m["labels"] == a.labels and m["name"] == "imagenet"
    assert m["protocol"]["preprocess"] == "paper" and m["protocol"]["image_size"] == 256
    assert m["protocol"]["seed"] == 42 and m["protocol"]["subset"] == "dataloader"
    other = build_dataset("imagenet", source=str(imagenet_folder), subset_size=4, seed=7)
    assert other.ids != a.ids
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(m))
    reused = build_dataset("imagenet", source=str(imagenet_folder), subset_size=1, seed=7, manifest=str(path))
    assert reused.ids == a.ids and reused.protocol["from_manifest"]
    bad = dict(m, ids=m["ids"] + ["ILSVRC2012_val_00099999"])
    with pytest.raises(ConfigError, match="does not have"):
        build_dataset("imagenet", source=str(imagenet_folder), manifest=bad)
    wrong = dict(m, labels=[(lab + 1) % 1000 for lab in m["labels"]])
    with pytest.raises(ConfigError, match="labels disagree"):
        build_dataset("imagenet", source=str(imagenet_folder), manifest=wrong)
    with pytest.raises(ConfigError, match="written for dataset"):
        build_dataset("imagenet", source=str(imagenet_folder), manifest=dict(m, name="oxford_pet"))


# -- Oxford-IIIT Pet ------------------------------------------------------------------------------------------
def test_oxford_pet_archive_layout_labels_and_split(tmp_path):
    root = tmp_path / "pets" / "images"
    root.mkdir(parents=True)
    breeds = ["beagle", "Abyssinian", "american_bulldog", "Bengal", "great_pyrenees"]
    k = 0
    for b in breeds:
        for i in range(1, 9):
            _photo(k, size=(24, 20)).save(root / f"{b}_{i}.jpg")
            k += 1
    _photo(99).save(root / "Bengal_9.png")  # not *.jpg: ignored, as the authors' glob
    (root.parent / "annotations").mkdir()
    ds = build_dataset("oxford_pet", source=str(tmp_path / "pets"))
    assert ds.class_names == ["Abyssinian", "Bengal", "american_bulldog", "beagle", "great_pyrenees"]  # ASCII
    names = sorted(p.name for p in root.glob("*.jpg"))
    _, val = pet_paper_split(names, 0.05, 42)
    assert ds.ids == [names[i][:-4] for i in val] and len(ds) == math.ceil(0.05 * 40)
    for i, lab in zip(ds.ids, ds.labels):
        assert ds.class_names[lab] == i.rsplit("_", 1)[0]
    train = build_dataset("oxford_pet", source=str(tmp_path / "pets"), split="paper_train")
    assert len(train) + len(ds) == 40 and not set(train.ids) & set(ds.ids)
    assert ds[0].image.shape == (3, 256, 256)


# -- Oxford 102 Flower ----------------------------------------------------------------------------------------
def test_oxford_flowers_official_files_order_and_labels(tmp_path):
    from scipy.io import savemat

    root = tmp_path / "flowers"
    (root / "jpg").mkdir(parents=True)
    n = 12
    for i in range(1, n + 1):
        _photo(i, size=(30, 30)).save(root / "jpg" / f"image_{i:05d}.jpg")
    labels = np.array([[5, 5, 1, 102, 7, 7, 3, 3, 1, 2, 2, 9]], dtype=np.uint8)  # 1-based, as imagelabels.mat
    savemat(root / "imagelabels.mat", {"labels": labels})
    savemat(root / "setid.mat", {"trnid": np.array([[1, 2, 3, 4]]), "valid": np.array([[9, 4, 11, 6, 1, 12]]),
                                 "tstid": np.array([[5, 7, 8, 10]])})
    ds = build_dataset("oxford_flowers", source=str(root), subset_size=4)
    assert ds.ids == ["image_00009", "image_00004", "image_00011", "image_00006"]  # setid.mat order, first N
    assert ds.labels == [0, 101, 1, 6] and ds.num_classes == 102 and ds.class_names[0] == "pink primrose"
    assert len(build_dataset("oxford_flowers", source=str(root), split="train")) == 4
    with pytest.raises(ConfigError, match="Flowers-102 layout"):
        build_dataset("oxford_flowers", source=str(root / "jpg"))


# -- Hugging Face datasets ------------------------------------------------------------------------------------
def test_saved_hf_dataset_through_the_generic_loader(tmp_path):
    import datasets

    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c"]),
                               "id": datasets.Value("string")})
    rows = {"image": [np.full((8, 8), 40 * i, np.uint8) for i in range(6)], "label": [0, 1, 2, 0, 1, 2],
            "id": [f"img{i}" for i in range(6)]}
    dd = datasets.DatasetDict({"test": datasets.Dataset.from_dict(rows, features=feats)})
    dd.save_to_disk(str(tmp_path / "hfds"))
    ds = build_dataset("hf", source=str(tmp_path / "hfds"), split="test", id_column="id", image_size=None,
                       channels=1, subset_size=4)
    assert ds.ids == ["img0", "img1", "img2", "img3"] and ds.labels == [0, 1, 2, 0]
    assert ds.class_names == ["a", "b", "c"]
    s = ds[2]
    assert s.image.shape == (1, 8, 8) and abs(float(s.image.mean()) - 80 / 255) < 1e-6
    mn = build_dataset("mnist", source=str(tmp_path / "hfds"), subset_size=None)  # the embedded MNIST loader
    assert mn.name == "mnist" and mn.ids == rows["id"]
    with pytest.raises(ConfigError, match="splits"):
        build_dataset("hf", source=str(tmp_path / "hfds"), split="train")


def test_pet_and_flowers_from_plain_image_folders(tmp_path):
    pets = tmp_path / "pets"
    for b in ("beagle", "Bengal"):
        (pets / b).mkdir(parents=True)
        for i in range(1, 11):
            _photo(i, size=(20, 20)).save(pets / b / f"{b}_{i}.jpg")
    ds = build_dataset("oxford_pet", source=str(pets), split="all")
    assert ds.class_names == ["Bengal", "beagle"] and ds.ids == sorted(ds.ids) and len(ds) == 20
    flowers = tmp_path / "flowers"
    for cls, stems in {"1": [7, 3], "102": [5], "21": [9, 1]}.items():
        (flowers / "valid" / cls).mkdir(parents=True)
        for n in stems:
            _photo(n, size=(20, 20)).save(flowers / "valid" / cls / f"image_{n:05d}.jpg")
    fl = build_dataset("oxford_flowers", source=str(flowers))
    assert fl.ids == ["image_00001", "image_00003", "image_00005", "image_00007", "image_00009"]
    assert fl.labels == [20, 0, 101, 0, 20]
    with pytest.raises(ConfigError, match="Flowers-102 layout"):
        build_dataset("oxford_flowers", source=str(flowers), split="test")


@pytest.mark.parametrize("path", sorted((__import__("pathlib").Path(__file__).resolve().parents[1] / "configs" /
                                         "dataset").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_dataset_config_names_a_dataset_and_only_its_options(path):
    from omegaconf import OmegaConf

    from attribution.datasets import DATASETS

    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    name = cfg.pop("name")
    assert name == path.stem
    DATASETS.check_options(name, cfg)  # raises on a key the loader does not take


def test_imagenet_from_a_hub_format_dataset_rebuilds_imagefolder_order(imagenet_folder, tmp_path):
    """The hub's ILSVRC/imagenet-1k stores <id>_<wnid>.JPEG paths in row order of its archive: ids and the
    ImageFolder order (so the papers' subset) must come out as from the folder."""
    import datasets

    files = sorted((imagenet_folder / "val").rglob("*.JPEG"), key=lambda f: f.stem[::-1])  # scrambled row order
    index = {TENCH[0]: 0, ESPRESSO[0]: 967, TOILET_TISSUE[0]: 999}
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    rows = {"image": [{"bytes": f.read_bytes(), "path": f"{f.stem}_{f.parent.name}.JPEG"} for f in files],
            "label": [index[f.parent.name] for f in files]}
    datasets.DatasetDict({"validation": datasets.Dataset.from_dict(rows, features=feats)}).save_to_disk(
        str(tmp_path / "hub"))
    a = build_dataset("imagenet", source=str(imagenet_folder), subset_size=None)
    b = build_dataset("imagenet", source=str(tmp_path / "hub"), subset_size=None)
    assert b.ids == a.ids and b.labels == a.labels
    assert torch.equal(a[0].image, b[0].image)


def test_pet_and_flowers_from_hub_format_datasets(tmp_path):
    """timm/oxford-iiit-pet (train+test, named by image_id) and dpdl-benchmark/oxford_flowers102 (a validation
    split, ClassLabel 0..101) as saved Hugging Face datasets."""
    import datasets

    def img(i):
        return np.full((12, 12, 3), 10 * i, np.uint8)

    names = ["beagle_3", "Bengal_1", "Abyssinian_2", "beagle_1", "Bengal_2", "Abyssinian_1"] * 4
    names = [f"{n}{k}" for k, n in enumerate(names)]
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64"),
                               "image_id": datasets.Value("string")})
    part = lambda sl: datasets.Dataset.from_dict({"image": [img(i) for i in range(len(names))][sl],  # noqa: E731
                                                  "label": [0] * len(names[sl]), "image_id": names[sl]},
                                                 features=feats)
    datasets.DatasetDict({"train": part(slice(0, 14)), "test": part(slice(14, None))}).save_to_disk(
        str(tmp_path / "pet"))
    ds = build_dataset("oxford_pet", source=str(tmp_path / "pet"), split="all")
    assert ds.ids == sorted(names) and ds.class_names == ["Abyssinian", "Bengal", "beagle"]
    assert [ds.class_names[lab] for lab in ds.labels] == [i.split("_")[0] for i in ds.ids]
    assert ds[0].image.shape == (3, 256, 256)

    ff = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=102)})
    val = datasets.Dataset.from_dict({"image": [img(i) for i in range(6)], "label": [5, 0, 101, 3, 3, 9]},
                                     features=ff)
    datasets.DatasetDict({"validation": val}).save_to_disk(str(tmp_path / "fl"))
    fl = build_dataset("oxford_flowers", source=str(tmp_path / "fl"), subset_size=4)
    assert fl.labels == [5, 0, 101, 3] and len(set(fl.ids)) == 4 and fl.class_names[101] == "blackberry lily"
