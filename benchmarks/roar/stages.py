"""The three ROAR stages, each resumable (:mod:`attribution.roar` holds the protocol's pieces).

1. :func:`base_model`: the attribution model: the configured classifier (``roar.base.source: model``) or one
   trained here on the unmodified training images (``train``), saved once under ``<out>/base/``.
2. :func:`saliency`: the pixel saliency sum_c |A| of every training (and test) image per method, computed in chunks
   of ``roar.chunk`` images, each saved atomically under ``<out>/cache/`` (a killed run keeps its chunks).
3. :func:`run_job`: one (map, ratio, repeat): the top pixels removed, a classifier trained from scratch, one row
   per test image (correct or not) written to ``<out>/store/``; a job whose rows are stored is skipped.

Concurrent jobs (a SLURM array) share stages 1 and 2 through file locks: one computes, the others wait and read.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from ..io import provenance
from ..io.locks import locked
from ..io.store import ShardWriter, atomic_write, load_store, run_stem
from . import plan as P

log = logging.getLogger("benchmarks.roar")


def _save(path: Path, obj) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def method_config(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    """``configs/method/<name>.yaml`` updated by ``method_settings`` and then ``roar.method_settings``."""
    from omegaconf import OmegaConf

    from ..run.config import CONFIG_DIR
    from ..run.config import method_config as settle

    mcfg = OmegaConf.to_container(OmegaConf.load(Path(CONFIG_DIR) / "method" / f"{name}.yaml"), resolve=True)
    mcfg = settle({"method": mcfg, "method_settings": cfg.get("method_settings") or {}})
    mcfg = settle({"method": mcfg, "method_settings": cfg["roar"].get("method_settings") or {}})
    mcfg.pop("name", None)
    return mcfg


def load_split(cfg: dict[str, Any], split: str, size: int | None):
    """(dataset name, ids, pixels [N,C,H,W] in [0,1], labels [N]) of ``split`` of the configured dataset."""
    from ..run.config import resolve_embedded
    from ..run.planning import _build

    dcfg = {**cfg["dataset"], "split": split, "subset_size": size, "manifest": None}
    ds = _build("dataset", resolve_embedded(dcfg))
    samples = [ds[k] for k in range(len(ds))]
    bad = [s.id for s in samples if s.image is None]
    if bad:
        raise ValueError(f"dataset {ds.name!r} split {split!r}: {len(bad)} unreadable images (first {bad[0]!r}); "
                         f"ROAR retrains on every image: fix or remove them")
    return (ds.name, [str(s.id) for s in samples], torch.stack([s.image.float() for s in samples]),
            torch.tensor([int(s.label) for s in samples]))


def normalizer(cfg: dict[str, Any]):
    from attribution.engine import Normalizer

    return Normalizer(cfg["model"]["mean"], cfg["model"]["std"])


def model_factory(cfg: dict[str, Any]):
    """A function building the retrained architecture from scratch (``roar.arch``: a timm name, or
    ``preact_resnet18``), with the configured classifier's input channels and classes."""
    r, m = cfg["roar"], cfg["model"]
    arch, kwargs = r["arch"], dict(r.get("model_kwargs") or {})
    in_chans, classes = int(m.get("in_chans") or 3), int(m["num_classes"])

    def make():
        if arch == "preact_resnet18":
            from attribution.preact_resnet import preact_resnet18

            return preact_resnet18(num_classes=classes, in_chans=in_chans, **kwargs)
        import timm

        return timm.create_model(arch, pretrained=False, in_chans=in_chans, num_classes=classes, **kwargs)

    return make


def train(cfg: dict[str, Any], spec: dict[str, Any], x, y, x_test, y_test, seed: int):
    """:func:`attribution.roar.fit` with a training block of the config (``base`` or ``retrain``)."""
    from attribution.roar import fit

    spec = {k: v for k, v in spec.items() if k != "source"}
    select = spec.pop("select", "final")
    return fit(model_factory(cfg), x, y, seed=seed, x_val=x_test, y_val=y_test, keep_best=select == "best_test",
               **spec)


def base_model(cfg: dict[str, Any], out: Path, device, data) -> torch.nn.Module:
    """Stage 1: the attribution model (eval mode, on ``device``)."""
    r = cfg["roar"]
    if r["base"]["source"] == "model":
        from ..run.config import resolve_embedded
        from ..run.planning import _build

        return _build("model", resolve_embedded(cfg["model"])).model.to(device).eval()
    path = out / "base" / f"base_model-{P.base_key(cfg)}.pt"
    with locked(path.with_suffix(".lock")):
        model = model_factory(cfg)().to(device)
        if path.is_file():
            model.load_state_dict(torch.load(path, map_location=device, weights_only=True)["state_dict"])
            return model.eval()
        t0 = time.perf_counter()
        log.info("roar: training the base model (%s, %s epochs)", r["arch"], r["base"].get("epochs"))
        model, hist = train(cfg, r["base"], data["train_x"], data["train_y"], data["test_x"], data["test_y"],
                            int(cfg.get("seed") or 0))
        _save(path, {"state_dict": model.state_dict(), "test_accuracy": hist[-1] if hist else None,
                     "history": hist, "seconds": time.perf_counter() - t0})
        return model.eval()


def saliency(cfg: dict[str, Any], out: Path, name: str, split: str, model, x: torch.Tensor, ids: list[str],
             labels: torch.Tensor, bank: torch.Tensor | None = None) -> torch.Tensor:
    """Stage 2: [N,H,W] pixel saliency sum_c |A| of method ``name`` on the normalised images ``x`` (on the model's
    device), targeting the model's prediction (``roar.target: pred``, as the SIG authors) or the label; ``bank``: the
    reference images of the methods that need them. Cached per chunk of ``roar.chunk`` images."""
    import attribution
    from attribution.roar import pixel_saliency, predict

    r = cfg["roar"]
    mcfg = method_config(cfg, name)
    key = provenance.config_hash({"method": name, "options": mcfg, "base": P.base_key(cfg), "ids": ids,
                                  "target": r["target"], "data": P.data_key(cfg)})
    folder = out / "cache" / f"{split}__{name}-{key}"
    chunk, n = int(r["chunk"]), len(x)
    files = [folder / f"chunk{k:06d}.pt" for k in range(0, n, chunk)]
    with locked(folder.with_suffix(".lock")):
        todo = [k for k, f in zip(range(0, n, chunk), files) if not f.is_file()]
        if todo:
            extra = {"mean": tuple(cfg["model"]["mean"]), "std": tuple(cfg["model"]["std"])}
            info = attribution.method_info(name)
            if info.needs_vae:
                from ..run.config import resolve_embedded
                from ..run.planning import _build

                extra["vae"] = _build("vae", resolve_embedded(cfg["vae"])).to(x.device)
            bs = int(cfg.get("batch_size") or 16)
            t0 = time.perf_counter()
            for start in todo:
                parts = []
                for b in range(start, min(start + chunk, n), bs):
                    xb = x[b:b + bs]
                    tb = predict(model, xb) if r["target"] == "pred" else labels[b:b + bs].to(xb.device)
                    method = attribution.build_method(name, **mcfg, **extra)  # random: fresh noise per image
                    if info.needs_bank:  # IG2: the first training images (the SIG authors: 100 CIFAR images)
                        method.set_references(bank)
                    parts.append(pixel_saliency(method(model, xb, tb).detach()).cpu())
                _save(files[start // chunk], torch.cat(parts))
            log.info("roar: %s maps of %d %s images in %.1fs", name, n, split, time.perf_counter() - t0)
    return torch.cat([torch.load(f, weights_only=True) for f in files])


def modified(x: torch.Tensor, sal: torch.Tensor, ratio: float, fill: str, mean, tie_seed: int, chunk: int):
    """x with its top ``ratio`` of pixels by ``sal`` removed, in chunks (the ranking's memory stays bounded)."""
    from attribution.roar import remove_top

    if ratio == 0:
        return x
    return torch.cat([remove_top(x[s:s + chunk], sal[s:s + chunk].to(x.device), ratio, fill=fill, mean=mean,
                                 tie_seed=tie_seed) for s in range(0, len(x), chunk)])


def job_stem(cfg: dict[str, Any], dataset: str, job: P.Job) -> tuple[str, str]:
    mcfg = None if job.map in (P.NONE, "random") else method_config(cfg, P.base_method(job.map))
    if job.map == "random":
        mcfg = method_config(cfg, "random")
    h = P.job_hash(cfg, job, mcfg)
    return run_stem(dataset, cfg["roar"]["arch"], job.map, h), h


def is_done(out: Path, stem: str, n_test: int) -> bool:
    return len(load_store(out, prefix=stem + "__")) >= n_test


def run_job(cfg: dict[str, Any], out: Path, job: P.Job, data: dict[str, Any], sal: dict[str, torch.Tensor],
            logger=None) -> float:
    """Stage 3: one (map, ratio, repeat) trained from scratch; its rows (one per test image) into the store.
    Returns the test accuracy."""
    from attribution.roar import blur_map, channel_means, correct

    r = cfg["roar"]
    stem, h = job_stem(cfg, data["dataset"], job)
    fill, tie, chunk = job.fill, int(r["tie_seed"]), int(r["chunk"])
    mean = channel_means(data["train_x"])
    t0 = time.perf_counter()

    def map_of(split):
        s = sal[f"{split}/{P.base_method(job.map)}"]
        return blur_map(s, float(r["blur_sigma"])).squeeze(1) if job.map.endswith(P.BLUR) else s

    x_tr = data["train_x"] if job.map == P.NONE else modified(data["train_x"], map_of("train"), job.ratio, fill,
                                                                mean, tie, chunk)
    x_te = data["test_x"]
    if r["modify_test"] and job.map != P.NONE:
        x_te = modified(x_te, map_of("test"), job.ratio, fill, mean, tie, chunk)
    seed = int(cfg.get("seed") or 0) + 1000 * job.repeat + 1
    model, hist = train(cfg, r["retrain"], x_tr, data["train_y"], x_te, data["test_y"], seed)
    ok = correct(model, x_te, data["test_y"]).cpu()
    seconds = time.perf_counter() - t0
    common = {"dataset": data["dataset"], "model": r["arch"], "method": job.map, "method_hash": h,
              "config_hash": provenance.config_hash(provenance.strip_keys(cfg)), "setup_hash": P.base_key(cfg),
              "status": "ok", "note": None, "completeness_error": float("nan"), "seconds": seconds,
              "passes_fb": float("nan"), "passes_f": float("nan"), "roar.ratio": float(job.ratio),
              "roar.fill": job.fill, "roar.test_images": "modified" if r["modify_test"] else "unmodified",
              "roar.repeat": int(job.repeat), "roar.epochs": len(hist) or int(r["retrain"]["epochs"]),
              "metrics": json.dumps({"roar": h}), "device": provenance.device_name(data["test_x"].device),
              "versions": json.dumps(provenance.versions(), sort_keys=True), "git_commit": provenance.git_commit(),
              "seed": int(cfg.get("seed") or 0), "shard": "0/1"}
    preds = _predictions(model, x_te).cpu()
    rows = [{**common, "image_id": i, "label": int(y), "target": int(y), "pred": int(p),
             "roar.correct": float(c)} for i, y, p, c in zip(data["test_ids"], data["test_y"].tolist(),
                                                             preds.tolist(), ok.tolist())]
    writer = ShardWriter(out, stem, (0, 1))
    writer.write(rows)
    writer.close()
    acc = float(ok.float().mean())
    if logger is not None:
        logger.log_metrics({"roar/accuracy": acc, "roar/ratio": job.ratio, "roar/seconds": seconds})
    return acc


def _predictions(model, x):
    from attribution.roar import predict

    return predict(model, x)
