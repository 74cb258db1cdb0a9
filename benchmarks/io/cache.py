"""On-disk attribution cache, so that adding a metric later re-scores without recomputing attributions.

One compressed ``.npz`` per image:
``<out_dir>/cache/<dataset>/<model>/<method>-<method_hash>/<image id, made file-safe>-<hash of id>.npz``
holding

- ``attr``: the attribution, in float32 by default (``dtype="float32"``: every score comes from the map the method
  returned). ``dtype="float16"`` halves the space: the map is stored as ``attr / scale`` in float16 with
  ``scale = max |attr|`` per image in float32 (about 5e-4 of the largest value), and since rounding reorders
  near-tied pixels it CHANGES the scores of ranking metrics (DiffID, insertion/deletion): use it for space only.
- ``completeness`` (NaN if the method is not a path method), ``seconds`` (attribution time per image),
  ``passes_fb`` / ``passes_f`` (classifier rows per image).

The runner always scores :func:`roundtrip` of a fresh attribution, so a score is the same whether its
attribution was just computed or read back from the cache. Files are written atomically (temp + rename).
"""
from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import torch

from .store import _safe, atomic_write

DTYPES = ("float16", "float32")


def _file_name(image_id: str) -> str:
    digest = hashlib.sha1(str(image_id).encode()).hexdigest()[:8]
    return f"{_safe(image_id)[-80:]}-{digest}.npz"


def _scale(attr: torch.Tensor) -> torch.Tensor:
    """Per-image max |attr| ([B]); 1 where the map is all zero or not finite."""
    s = attr.detach().abs().flatten(1).amax(1).float()
    return torch.where(torch.isfinite(s) & (s > 0), s, torch.ones_like(s))


def roundtrip(attr: torch.Tensor, dtype: str = "float32") -> torch.Tensor:
    """What reading ``attr`` ([B,...]) back from the cache gives: float32 on attr's device."""
    if dtype == "float32":
        return attr.float()
    s = _scale(attr).view(-1, *([1] * (attr.dim() - 1)))
    return ((attr.float() / s).half().float() * s).float()


class AttributionCache:
    """Per-image attribution files of one (dataset, model, method config) run; ``enabled=False`` stores nothing."""

    def __init__(self, out_dir, dataset: str, model: str, method: str, method_hash: str, dtype: str = "float32",
                 enabled: bool = True):
        if dtype not in DTYPES:
            raise ValueError(f"invalid cache dtype {dtype!r}: choose one of {list(DTYPES)}")
        self.dir = Path(out_dir) / "cache" / _safe(dataset) / _safe(model) / f"{_safe(method)}-{_safe(method_hash)}"
        self.dtype = dtype
        self.enabled = enabled

    def path(self, image_id: str) -> Path:
        return self.dir / _file_name(image_id)

    def get(self, image_id: str) -> dict | None:
        """The cached record (``attr`` as a float32 tensor on the CPU, plus the scalars), or None."""
        if not self.enabled:
            return None
        p = self.path(image_id)
        if not p.exists():
            return None
        try:
            with np.load(p) as z:
                attr = z["attr"].astype(np.float32) * np.float32(z["scale"])
                rec = {k: float(z[k]) for k in ("completeness", "seconds", "passes_fb", "passes_f")}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None  # unreadable (e.g. written by an older version): recompute
        rec["attr"] = torch.from_numpy(attr)
        return rec

    def put(self, image_id: str, attr: torch.Tensor, completeness: float = float("nan"), seconds: float = float("nan"),
            passes_fb: float = float("nan"), passes_f: float = float("nan")) -> None:
        """Store one image's attribution ([C,H,W]) and its scalars."""
        if not self.enabled:
            return
        a = attr.detach().float().cpu()
        if self.dtype == "float16":
            scale = _scale(a.unsqueeze(0))[0]
            data, scale = (a / scale).half().numpy(), np.float32(scale)
        else:
            data, scale = a.numpy(), np.float32(1.0)
        buf = io.BytesIO()
        np.savez_compressed(buf, attr=data, scale=scale, completeness=np.float64(completeness),
                            seconds=np.float64(seconds), passes_fb=np.float64(passes_fb),
                            passes_f=np.float64(passes_f))
        atomic_write(self.path(image_id), lambda tmp: Path(tmp).write_bytes(buf.getvalue()))
