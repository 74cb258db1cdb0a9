"""Image x method attribution grids for the report, built from the attribution cache.

The runner keeps the pixels of the first :data:`N_KEPT` images of each (dataset, model) in
``<out_dir>/figures/samples/<dataset>__<model>.npz`` (8-bit, as the images were read); the per-image browser of
the report shows them beside every method's maps, and :func:`write_attribution_grids` draws the first
:data:`N_SAMPLES` of them with every method's cached attributions as ``figures/attributions__<dataset>__<model>.png``
(:func:`benchmarks.report.figures.attribution_grid`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..io.cache import _file_name
from ..io.store import _safe, atomic_write

#: images per attribution grid
N_SAMPLES = 4
#: images whose pixels the runner keeps per (dataset, model): the most the report's per-image browser shows
N_KEPT = 32


def samples_path(out_dir, dataset: str, model: str) -> Path:
    return Path(out_dir) / "figures" / "samples" / f"{_safe(dataset)}__{_safe(model)}.npz"


def load_samples(path) -> tuple[list[str], np.ndarray]:
    """(ids, pixels [N,C,H,W] float32 in [0,1]) of a samples file (8-bit, or float as earlier runs kept them)."""
    with np.load(path) as z:
        ids, pixels = [str(i) for i in z["ids"]], z["pixels"]
    if pixels.dtype == np.uint8:
        pixels = pixels.astype(np.float32) / 255.0
    return ids, pixels.astype(np.float32, copy=False)


def save_samples(out_dir, dataset: str, model: str, ids, pixels: torch.Tensor) -> None:
    """Keep the pixels ([N,C,H,W] in [0,1]) of the first N_KEPT images seen per (dataset, model), as 8-bit
    (the images are read from 8-bit files: nothing is lost, and 32 photos take a few MB, not 20)."""
    path = samples_path(out_dir, dataset, model)
    kept_ids, kept = [], []
    if path.exists():
        with np.load(path) as z:
            kept_ids, kept = [str(i) for i in z["ids"]], list(_as_uint8(z["pixels"]))
    if len(kept_ids) >= N_KEPT:
        return
    added = False
    for i, p in zip(ids, pixels.detach().float().cpu().numpy()):
        if len(kept_ids) < N_KEPT and str(i) not in kept_ids:
            kept_ids.append(str(i))
            kept.append(_as_uint8(p))
            added = True
    if not added:
        return
    data = dict(ids=np.array(kept_ids), pixels=np.stack(kept))

    def write(tmp):
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a path
            np.savez_compressed(fh, **data)

    atomic_write(path, write)


def _as_uint8(a: np.ndarray) -> np.ndarray:
    return a if a.dtype == np.uint8 else (np.clip(a, 0, 1) * 255).round().astype(np.uint8)


def _latest_cache_dirs(model_dir: Path) -> dict[str, Path]:
    """{method: its most recently written cache folder} under cache/<dataset>/<model>/."""
    latest: dict[str, Path] = {}
    for d in sorted(p for p in model_dir.iterdir() if p.is_dir()):
        method = d.name.split("-", 1)[0]
        if method not in latest or d.stat().st_mtime > latest[method].stat().st_mtime:
            latest[method] = d
    return latest


def write_attribution_grids(out_dir) -> list[Path]:
    """One grid per (dataset, model) that has samples and cached attributions; returns the PNG paths."""
    from .figures import attribution_grid

    out_dir = Path(out_dir)
    written = []
    for sample_file in sorted((out_dir / "figures" / "samples").glob("*.npz")):
        dataset, model = sample_file.stem.split("__", 1)
        model_dir = out_dir / "cache" / dataset / model
        if not model_dir.is_dir():
            continue
        ids, pixels = load_samples(sample_file)
        ids, pixels = ids[:N_SAMPLES], pixels[:N_SAMPLES]
        attrs = {}
        for method, d in _latest_cache_dirs(model_dir).items():
            maps = []
            for i in ids:
                f = d / _file_name(i)
                if not f.exists():
                    break
                with np.load(f) as c:
                    maps.append(c["attr"].astype(np.float32) * np.float32(c["scale"]))
            if len(maps) == len(ids):
                attrs[method] = np.stack(maps)
        if attrs:
            path = out_dir / "figures" / f"attributions__{dataset}__{model}.png"
            written.append(Path(attribution_grid(pixels, attrs, titles=ids, path=path)))
    return written
