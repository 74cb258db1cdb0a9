"""The evaluation subset of a run, saved as a manifest beside its results: which manifest a run uses, and when.

A manifest in ``out_dir`` is never hidden state that overrides the command line:

- ``dataset.manifest=<file>`` (named by the user) is used as given.
- Otherwise the run's *selection* (the dataset config minus how each image is preprocessed) is hashed, and the
  manifest is ``<out_dir>/manifest_<dataset>_<hash>.json``: it is reused only by a run with exactly the same
  selection (so the same images are evaluated even if the source folder changed since), and two image folders or
  two subsets never share a file.
- A selection that picks other images of a dataset (same name and source) than a manifest already in ``out_dir``
  fails at once, naming the keys that differ and how to choose: the rows and tables of one folder would otherwise
  mix two subsets.
- The manifest is written only after every check of the run passed (:func:`write`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from attribution.errors import ConfigError

from ..io import provenance
from ..io.store import atomic_write_text

#: Dataset keys that say how an image is turned into a tensor, not which images are evaluated.
PREPROCESS_KEYS = ("preprocess", "image_size", "timm_model", "interpolation", "channels", "manifest")


def selection(dataset_cfg: dict[str, Any]) -> dict[str, Any]:
    """The keys of a dataset config (as configured: ``embedded:`` names, not local paths) that pick its images; a
    manifest named by the user enters by the hash of the ids it lists."""
    sel = {k: v for k, v in dataset_cfg.items() if k not in PREPROCESS_KEYS}
    if dataset_cfg.get("manifest") is not None:
        from attribution.datasets import load_manifest

        sel["manifest_ids"] = provenance.config_hash([str(i) for i in load_manifest(dataset_cfg["manifest"])["ids"]])
    return sel


def path_for(out_dir: Path, dataset_cfg: dict[str, Any]) -> Path:
    """``<out_dir>/manifest_<dataset>_<hash of the selection>.json``."""
    name = str(dataset_cfg.get("name", "dataset"))
    return Path(out_dir) / f"manifest_{name}_{provenance.config_hash(selection(dataset_cfg), 8)}.json"


def _read(p: Path) -> dict[str, Any] | None:
    try:
        m = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) and isinstance(m.get("ids"), list) else None


def _recorded_selection(m: dict[str, Any]) -> dict[str, Any]:
    """The selection a manifest was made from (older manifests: what their protocol recorded)."""
    if isinstance(m.get("selection"), dict):
        return m["selection"]
    proto = m.get("protocol") if isinstance(m.get("protocol"), dict) else {}
    keys = ("split", "subset", "subset_size", "seed")
    return {"name": m.get("name"), "source": m.get("source"), **{k: proto[k] for k in keys if k in proto}}


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = [k for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]
    return ", ".join(f"dataset.{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys) or "the same keys"


def choose(out_dir: Path, dataset_cfg: dict[str, Any]) -> tuple[dict[str, Any], Path]:
    """The dataset config to build (with ``manifest`` set where one is reused) and the manifest's path."""
    dcfg = dict(dataset_cfg)
    target = path_for(out_dir, dataset_cfg)
    if dcfg.get("manifest") is None and target.is_file():
        dcfg["manifest"] = str(target)
    return dcfg, target


def check_consistent(out_dir: Path, dataset_cfg: dict[str, Any], ids: list[str], target: Path) -> None:
    """Fail when ``out_dir`` holds a manifest of the same dataset (name and source) with other images."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return
    sel = selection(dataset_cfg)
    name, source = sel.get("name"), sel.get("source")
    for p in sorted(out_dir.glob("manifest_*.json")):
        if p == target:
            continue
        m = _read(p)
        if m is None or m.get("name") != name:
            continue
        old = _recorded_selection(m)
        if old.get("source") != source or [str(i) for i in m["ids"]] == [str(i) for i in ids]:
            continue  # another source is another set of images (its own manifest); the same ids agree
        given = dataset_cfg.get("manifest")
        what = (f"dataset.manifest={given!r} lists {len(ids)} images" if given is not None
                else f"this selection picks {len(ids)} images ({_differences(old, sel)})")
        raise ConfigError(
            f"out_dir={str(out_dir)!r} already holds dataset {name!r} evaluated on {len(m['ids'])} other images "
            f"({p.name}); {what}. Choose one: out_dir=<a new folder> for this selection; "
            f"dataset.manifest={p} to evaluate the earlier images again (or set the earlier values back); or delete "
            f"{p.name} and that dataset's rows under store/ to start over")


def write(path: Path, dataset, dataset_cfg: dict[str, Any]) -> None:
    """Save the dataset's manifest (with the selection it was made from), atomically; a reused one is kept."""
    if path.is_file():
        return
    record = dict(dataset.manifest())
    configured = dataset_cfg.get("source")
    if isinstance(configured, str) and configured.startswith("embedded:"):
        record["source"] = configured  # the asset's name, not this machine's cache folder
    record["selection"] = selection(dataset_cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1, default=str))
