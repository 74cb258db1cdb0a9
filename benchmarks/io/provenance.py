"""What produced a result row: config hashes, package versions, git commit, device.

Every row of the results store carries these (docs/design.md, "Every result row carries what produced it").
"""
from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

#: Keys of the resolved run config that do not change what a row contains (where it is written, how it is
#: split, how it is shown), left out of ``config_hash``.
RUN_ONLY_KEYS = ("out_dir", "shard", "logger", "progress", "batch_size", "device", "num_workers", "experiment_name",
                 "write_tables", "preflight", "cache", "hydra", "grid_sizes")

_PACKAGES = ("torch", "torchvision", "timm", "diffusers", "numpy", "quantus", "hydra-core")


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, tuples as lists, non-JSON values as their repr)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=repr)


def config_hash(obj: Any, length: int = 10) -> str:
    """Short stable hash of a JSON-able config (dicts hashed independently of key order)."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def strip_keys(cfg: dict[str, Any], keys: Iterable[str] = RUN_ONLY_KEYS) -> dict[str, Any]:
    drop = set(keys)
    return {k: v for k, v in cfg.items() if k not in drop}


@functools.cache
def versions() -> dict[str, str]:
    """Versions of python, this package and the libraries that shape the numbers (missing ones omitted)."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES + ("attribution-bench",):
        try:
            out["package" if name == "attribution-bench" else name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


@functools.cache
def git_commit(root: str | None = None) -> str:
    """HEAD commit of the repository holding this file ('+dirty' if tracked files changed; 'unknown' outside git)."""
    cwd = root or str(Path(__file__).resolve().parent)
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_name(device) -> str:
    """Human-readable device: 'cpu (<n> threads)' or 'cuda:0 (NVIDIA H100 80GB HBM3)'."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"{device.type} ({torch.get_num_threads()} threads)"
