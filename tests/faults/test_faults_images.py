"""Bad files in a local image folder (the library's own ``image_folder`` dataset and a tiny timm classifier, run
through the runner): corrupt, truncated, empty and decompression-bomb files are skipped with a note saying why;
grayscale, palette, CMYK, RGBA, 16-bit and very large images are converted with a note saying how; nothing is
dropped silently and the run goes on."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from fault_helpers import add_configs, base_overrides, run_inproc, write_conf
from PIL import Image

from attribution.datasets import build_dataset
from benchmarks.io.store import load_store


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int, height: int) -> bytes:
    """A few hundred bytes that declare a width x height 8-bit grayscale PNG (PIL refuses it on open)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""))


def _encoded(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def make_folder(root):
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8), "RGB")
    files = {
        "cat/good.png": _encoded(rgb, "PNG"),
        "cat/gray.png": _encoded(rgb.convert("L"), "PNG"),
        "cat/palette.png": _encoded(rgb.convert("P"), "PNG"),
        "cat/cmyk.jpg": _encoded(rgb.convert("CMYK"), "JPEG"),
        "cat/rgba.png": _encoded(Image.merge("RGBA", (*rgb.split(), rgb.convert("L"))), "PNG"),
        # 16-bit grayscale at half scale: must read as ~0.5, not clipped to white as Image.convert("L") would
        "cat/sixteen.png": _encoded(Image.fromarray(np.full((20, 24), 32768, dtype=np.uint16)), "PNG"),
        "cat/large.png": _encoded(Image.new("RGB", (3000, 2000), (200, 30, 90)), "PNG"),
        "dog/good.jpg": _encoded(rgb, "JPEG"),
        "dog/corrupt.png": b"no magic number, just noise " + bytes(rng.integers(0, 256, 200, dtype=np.uint8)),
        "dog/gif_header.png": b"GIF89a" + bytes(rng.integers(0, 256, 200, dtype=np.uint8)),  # garbage sizes
        "dog/empty.jpg": b"",
        "dog/truncated.png": _encoded(rgb, "PNG")[:300],
        "dog/truncated_jpeg.jpg": _encoded(rgb, "JPEG")[:400],
        "dog/bomb.png": bomb_png(40_000, 40_000),
        "dog/readme.txt": b"not an image: ignored by the folder's extension filter",
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


CONVERTED = {"cat/gray": "grayscale", "cat/palette": "palette", "cat/cmyk": "CMYK", "cat/rgba": "RGBA",
             "cat/sixteen": "16-bit"}
SKIPPED = {"dog/corrupt": "unreadable", "dog/empty": "unreadable", "dog/truncated": "truncated",
           "dog/truncated_jpeg": "truncated", "dog/bomb": "large", "dog/gif_header": "skipped"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("images"))


def test_dataset_converts_or_skips_every_bad_file_with_a_note(folder):
    ds = build_dataset("image_folder", source=str(folder), image_size=16)
    assert "dog/readme" not in ds.ids and len(ds) == 14
    by_id = {ds[i].id: ds[i] for i in range(len(ds))}
    for i, word in CONVERTED.items():
        s = by_id[i]
        assert s.image is not None and s.image.shape == (3, 16, 16), i
        assert word.lower() in s.note.lower(), (i, s.note)
    for i, word in SKIPPED.items():
        s = by_id[i]
        assert s.image is None and s.note and word in s.note.lower(), (i, s.note)
    assert by_id["cat/good"].note is None and by_id["cat/large"].image.shape == (3, 16, 16)
    assert abs(float(by_id["cat/sixteen"].image.mean()) - 128 / 255) < 1 / 255  # scaled, not clipped
    for s in by_id.values():
        if s.image is not None:
            assert 0 <= float(s.image.min()) and float(s.image.max()) <= 1


def test_run_over_a_folder_of_bad_files_records_every_one(folder, tmp_path):
    conf = write_conf(tmp_path)
    add_configs(conf, {
        "dataset/bad_folder.yaml": {"name": "image_folder", "source": str(folder), "image_size": 16},
        "model/tiny_timm.yaml": {"name": "tiny_timm", "arch": "test_resnet", "pretrained": False, "num_classes": 2,
                                 "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "input_size": 16}})
    out = tmp_path / "out"
    ov = [o for o in base_overrides(conf, out, "batch_size=4", "method.n_steps=4")
          if o not in ("dataset=tiny", "model=tiny")]
    res = run_inproc([*ov, "dataset=bad_folder", "model=tiny_timm"])
    assert res.evaluated == 14
    df = load_store(out).set_index("image_id")
    assert len(df) == 14 and df.index.is_unique
    assert (df.loc[list(SKIPPED), "status"] == "skipped").all()
    assert df.loc[list(SKIPPED), "note"].str.len().gt(0).all()
    good = [i for i in df.index if i not in SKIPPED]
    assert (df.loc[good, "status"] == "ok").all()
    assert df.loc[good, "completeness.completeness_error"].notna().all()
    for i, word in CONVERTED.items():
        assert word.lower() in df.loc[i, "note"].lower()
    assert df.loc["dog/good", "label"] == 1 and df.loc["cat/good", "label"] == 0
