"""Configuration and command line of the speed benchmark (the usage is in :mod:`benchmarks.perf.speed`)."""
from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

COLUMNS = [
    "kind", "name", "device", "model", "image_size", "batch", "n_steps", "method_steps", "status",
    "sec_per_image", "fb_per_image", "f_per_image", "decoder_f", "decoder_b", "encoder", "peak_mem_mb",
    "lower_bound_sec", "ratio_to_bound", "loop_sec_per_image", "loop_mode", "speedup_vs_loop",
    "external", "external_sec_per_image", "speedup_vs_external", "cost", "levels", "mem_method",
    "autocast", "channels_last", "threads", "load1", "torch", "timestamp", "command", "notes",
]
KEY = ("kind", "name", "device", "model", "image_size", "batch", "n_steps", "autocast", "channels_last")
CONFIG_KEY = ("device", "model", "image_size", "batch", "n_steps", "autocast", "channels_last")

EXTERNALS = ("captum", "pair", "quantus")


@dataclass
class Config:
    model: str = "resnet18"
    image_size: int = 256
    batch: int = 32
    n_steps: int = 200
    methods: list[str] | None = None
    metrics: list[str] | None = None
    device: str = "cpu"
    out: str = "results/speed"
    vae: str = "auto"
    num_classes: int = 1000
    max_batch: int | None = None
    autocast: str = "none"
    channels_last: bool = False
    cudnn_benchmark: bool = True
    repeats: int = 1
    warmup: bool = True
    threads: int | None = None
    blas_threads: int | None = None
    loops: bool = True
    loop_images: int = 2
    loop_steps: int = 8
    real_loop_images: int | None = None
    externals: tuple[str, ...] = EXTERNALS
    bound_chunks: list[int] | None = None
    calib_min_sec: float | None = None
    estimate_models: list[str] = field(default_factory=list)
    estimate: bool = True
    recalibrate: bool = True
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int = 0
    quick: bool = False
    verbose: bool = True
    command: str = ""


def _csv_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv: Sequence[str] | None = None) -> Config:
    from . import __doc__ as usage

    p = argparse.ArgumentParser(prog="python -m benchmarks.perf.speed", description=usage.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="CPU smoke benchmark: tiny model (timm test_resnet) at 32x32, n_steps 32, batch 8, small VAE")
    p.add_argument("--model", default=None,
                   help="tiny | resnet18 | vgg16 | inception_v1 | vit_b16 (at 224) | mnist_vit (at 28) | any timm name")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--n-steps", type=int, default=None, help="n_steps of the path methods (IG2: steps = n + 1)")
    p.add_argument("--methods", default=None, help="comma list (default: every registered method)")
    p.add_argument("--metrics", default=None,
                   help="comma list (default: every registered metric except the Quantus ones, plus "
                        "quantus_pixel_flipping); 'none' for no metric")
    p.add_argument("--device", default=None, choices=["cpu", "cuda"])
    p.add_argument("--out", default="results/speed")
    p.add_argument("--vae", default="auto", choices=["auto", "sd", "small", "none"],
                   help="VAE of the latent methods (auto: sd on cuda, small on cpu)")
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--max-batch", type=int, default=None, help="classifier rows per chunk (default: the method's)")
    p.add_argument("--autocast", default="none", choices=["none", "bf16", "fp16"])
    p.add_argument("--channels-last", action="store_true",
                   help="classifier and VAE weights and the images in NHWC (faster convolutions on GPUs)")
    p.add_argument("--no-cudnn-benchmark", action="store_true")
    p.add_argument("--repeats", type=int, default=1, help="timed calls per method (the minimum is reported)")
    p.add_argument("--no-warmup", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--blas-threads", type=int, default=None,
                   help="limit NumPy/SciPy's OpenBLAS threads (threadpoolctl); on an oversubscribed machine their "
                        "spinning threads make small SciPy calls (PIC's interpolation) far slower")
    p.add_argument("--no-loops", action="store_true", help="skip the per-image reference loops")
    p.add_argument("--loop-images", type=int, default=None, help="images for the extrapolated loops (default 2)")
    p.add_argument("--loop-steps", type=int, default=None, help="steps for the extrapolated loops (default 8)")
    p.add_argument("--real-loop-images", type=int, default=None,
                   help="limit the real loops to this many images (then flagged extrapolated)")
    p.add_argument("--externals", default=",".join(EXTERNALS), help="comma list of captum,pair,quantus or 'none'")
    p.add_argument("--bound-chunks", default=None, help="chunk sizes of the lower-bound sweep, e.g. 1,8,32,128")
    p.add_argument("--calib-min-sec", type=float, default=None, help="minimum seconds timed per chunk size")
    p.add_argument("--estimate-models", default=None,
                   help="models whose per-row times at 256x256 are measured for the table-1 estimate "
                        "(default: none on cpu, the table-1 models of configs/experiment/table1.yaml on cuda)")
    p.add_argument("--no-estimate", action="store_true", help="do not write the table-1 estimate")
    p.add_argument("--no-recalibrate", action="store_true",
                   help="measure the per-row times once (default: again at the end, keeping the faster)")
    p.add_argument("--set", action="append", default=[], metavar="NAME.KEY=VALUE",
                   help="keyword for one method or metric (YAML value), e.g. samp.max_iter=200; repeatable")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)

    cfg = Config()
    cfg.command = "python -m benchmarks.perf.speed " + " ".join(
        shlex.quote(str(v)) for v in (sys.argv[1:] if argv is None else argv))
    if a.quick:
        cfg.model, cfg.image_size, cfg.n_steps, cfg.batch, cfg.device, cfg.quick = "tiny", 32, 32, 8, "cpu", True
        cfg.vae, cfg.loop_images, cfg.loop_steps = "small", 2, 4
    cfg.device = a.device or (cfg.device if a.quick else ("cuda" if torch.cuda.is_available() else "cpu"))
    for attr, val in (("model", a.model), ("image_size", a.image_size), ("batch", a.batch), ("n_steps", a.n_steps)):
        if val is not None:
            setattr(cfg, attr, val)
    if a.vae != "auto" or not a.quick:
        cfg.vae = a.vae
    cfg.methods, cfg.out, cfg.num_classes, cfg.max_batch = _csv_list(a.methods), a.out, a.num_classes, a.max_batch
    metrics = _csv_list(a.metrics)
    cfg.metrics = [] if metrics == ["none"] else metrics
    cfg.autocast, cfg.channels_last, cfg.cudnn_benchmark = a.autocast, a.channels_last, not a.no_cudnn_benchmark
    cfg.repeats, cfg.warmup, cfg.threads, cfg.loops = max(1, a.repeats), not a.no_warmup, a.threads, not a.no_loops
    cfg.blas_threads = a.blas_threads
    if a.loop_images is not None:
        cfg.loop_images = a.loop_images
    if a.loop_steps is not None:
        cfg.loop_steps = a.loop_steps
    cfg.real_loop_images = a.real_loop_images
    ext = _csv_list(a.externals) or []
    cfg.externals = tuple(e for e in ext if e != "none")
    bad = sorted(set(cfg.externals) - set(EXTERNALS))
    if bad:
        p.error(f"--externals: unknown {bad}; choose from {list(EXTERNALS)} or 'none'")
    cfg.bound_chunks = [int(c) for c in _csv_list(a.bound_chunks)] if a.bound_chunks else None
    cfg.calib_min_sec = a.calib_min_sec
    em = _csv_list(a.estimate_models)
    if em is None and cfg.device == "cuda":
        from .estimate import table1_grid

        em = list(table1_grid().models)
    cfg.estimate_models = em or []
    cfg.estimate, cfg.recalibrate = not a.no_estimate, not a.no_recalibrate
    cfg.seed, cfg.verbose = a.seed, not a.quiet
    for item in a.set:
        m = re.fullmatch(r"([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)=(.*)", item)
        if not m:
            p.error(f"--set {item!r}: expected NAME.KEY=VALUE, e.g. samp.max_iter=200")
        import yaml

        cfg.overrides.setdefault(m.group(1), {})[m.group(2)] = yaml.safe_load(m.group(3))
    for key in ("image_size", "batch", "n_steps"):
        if getattr(cfg, key) < (2 if key == "n_steps" else 1):
            p.error(f"--{key.replace('_', '-')} must be >= {2 if key == 'n_steps' else 1}")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but torch.cuda.is_available() is False")
    return cfg
