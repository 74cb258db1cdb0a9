"""Speed benchmark of every attribution method and metric (issue 8; the speed parts of issues 2, 3 and 5).

For one classifier, image size and batch size it measures, per method (``attribution.available_methods()``) and
per metric (``attribution.available_metrics()``):

- seconds per image (wall time of one batched call / batch; CUDA: ``torch.cuda.synchronize`` around it, after a
  short warm-up call with the same chunk shapes);
- classifier rows per image through forward+backward (``fb_per_image``) and forward only (``f_per_image``), counted
  by :class:`attribution.PassCounter`; VAE decoder forwards/backwards and encoder rows per image counted by hooks on
  the VAE's decoder/encoder (:class:`attribution.vae.VAEPassCounter`); the method's documented ``cost()`` beside;
- peak memory above the pre-call level: CUDA ``torch.cuda.max_memory_allocated`` (after ``reset_peak_memory_stats``);
  CPU the peak resident set size (Linux ``VmHWM``, reset through ``/proc/self/clear_refs`` before the call) minus the
  RSS before it, or, where that reset is unavailable, the growth of ``resource.getrusage(...).ru_maxrss`` (which only
  sees growth past the process's earlier peak). ``tracemalloc`` does not see torch's allocations. Column
  ``mem_method`` says which was used;
- the lower bound: "the method's required passes run as batched chunks at the best chunk size on that device". The
  seconds per classifier forward+backward row and per forward-only row are measured at several chunk sizes
  (``--bound-chunks``), the best kept (``cal.*`` rows of the CSV), and
  ``lower_bound = fb x t_fb + f x t_f + b x (t_fb - t_f) + decoder rows x their row times + encoder rows x t_enc``
  with the method's rows per image (its ``cost()``; for the data-dependent methods - AGI, SAMP, MIG - the rows
  actually counted); ``ratio_to_bound = sec_per_image / lower_bound``;
- the same work done by a plain per-image, per-step loop written like the authors' code
  (:mod:`benchmarks.reference_loops`; IG, SIG, Blur IG, Guided IG with its 2N-1 passes and Gradient x Input run for
  real, MA-GIG, EIG, MIG, IG2 and AGI on ``--loop-images`` images / ``--loop-steps`` steps and extrapolated, flagged
  ``extrapolated`` in ``loop_mode``), and by captum (IG: ``captum.attr.IntegratedGradients``, left Riemann sum,
  ``internal_batch_size`` = the method's chunk) and PAIR saliency (``saliency.core`` IntegratedGradients, GuidedIG
  with ``max_dist=1``, BlurIG: per image on numpy through a ``call_model_function``);
- metrics: DiffID, RISE insertion/deletion, PIC, completeness and Quantus PixelFlipping; "equivalent work" for
  issue 5 = Quantus PixelFlipping's seconds per perturbation level times our number of levels (DiffID: 2 x 9,
  insertion/deletion: 2 (n + 1)); PIC against PAIR's ``compute_pic_metric`` (SIC and AIC, per image).

Outputs (one set per device; rows of earlier runs with another configuration are kept, same key = replaced):
``<out>/<device>.csv``, ``<out>/<device>.md`` (tables per configuration and the goals with PASS/FAIL) and
``<out>/table1_estimate_<device>.md`` (GPU-hours of the whole table-1 grid extrapolated from the measurements).
``<device>`` is ``cpu`` or ``cuda-<gpu name>``.

Models have random weights (nothing is downloaded): ``tiny`` = timm ``test_resnet``; ``resnet18``, ``vgg16``,
``inception_v1`` = the harness's ``configs/model/*.yaml`` architectures; any other timm name works too. The images
are smooth random pictures; targets are the model's own predictions. The latent methods get a diffusers
``AutoencoderKL`` with random weights: ``--vae sd`` = the Stable Diffusion VAE's shape (block_out_channels
128/256/512/512, 2 layers per block, 4 latent channels), ``--vae small`` = 16/32/32/32, 1 layer (CPU).
Data-dependent counts (AGI's early stops, SAMP's termination, MIG's energy test) depend on the random weights.

Usage::

    # CPU, a few minutes on 2 cores (timm test_resnet at 32x32, n_steps 32, batch 8, small VAE):
    python -m benchmarks.speed --quick
    # CPU, the papers' ResNet-18 at 128x128:
    python -m benchmarks.speed --model resnet18 --image-size 128 --batch 8 --n-steps 32 --device cpu
    # GPU (H100), the papers' setting; the grid estimate measures all three table-1 models at 256x256:
    python -m benchmarks.speed --device cuda --model resnet18 --image-size 256 --batch 32 --n-steps 200 \\
        --vae sd --estimate-models vgg16,resnet18,inception_v1 --out results/speed
    # one command must stay under ~10 minutes on a lent GPU: split by methods (rows of a device are merged,
    # the estimate is recomputed from all of them at the end of every invocation), e.g.
    python -m benchmarks.speed --device cuda --model resnet18 --image-size 256 --batch 32 --n-steps 200 --vae sd \\
        --methods grad_input,ig,sig,blur_ig,guided_ig,random --metrics none --no-estimate
    python -m benchmarks.speed --device cuda --model resnet18 --image-size 256 --batch 32 --n-steps 200 --vae sd \\
        --methods ig2,agi,samp --metrics none --no-estimate
    python -m benchmarks.speed --device cuda --model resnet18 --image-size 256 --batch 32 --n-steps 200 --vae sd \\
        --methods ma_gig,eig,mig --metrics none --no-estimate
    python -m benchmarks.speed --device cuda --model resnet18 --image-size 256 --batch 32 --n-steps 200 --vae sd \\
        --methods ig --metrics diffid,insertion_deletion,pic,completeness,quantus_pixel_flipping \\
        --estimate-models vgg16,resnet18,inception_v1

The reference loops, captum and PAIR always run in float32 (``--autocast`` applies to the library's methods and to
the lower-bound sweep only).

Options worth knowing: ``--methods``/``--metrics`` (comma lists), ``--set samp.max_iter=200`` (any method/metric
keyword), ``--autocast bf16``, ``--channels-last``, ``--repeats 3`` (minimum of 3 timed calls), ``--threads``,
``--externals captum,pair,quantus``, ``--no-loops``, ``--blas-threads 1`` (on a busy machine: NumPy/SciPy's OpenBLAS
threads then stop spinning against other processes; the committed CPU figures used ``--threads 1 --blas-threads 1``).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import inspect
import json
import math
import os
import re
import resource
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from attribution.engine.gradients import default_max_batch, is_oom

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

COLUMNS = [
    "kind", "name", "device", "model", "image_size", "batch", "n_steps", "method_steps", "status",
    "sec_per_image", "fb_per_image", "f_per_image", "decoder_f", "decoder_b", "encoder", "peak_mem_mb",
    "lower_bound_sec", "ratio_to_bound", "loop_sec_per_image", "loop_mode", "speedup_vs_loop",
    "external", "external_sec_per_image", "speedup_vs_external", "cost", "levels", "mem_method",
    "autocast", "channels_last", "threads", "load1", "torch", "timestamp", "command", "notes",
]
KEY = ("kind", "name", "device", "model", "image_size", "batch", "n_steps", "autocast", "channels_last")
CONFIG_KEY = ("device", "model", "image_size", "batch", "n_steps", "autocast", "channels_last")

TABLE1_METHODS = ("grad_input", "ig", "blur_ig", "guided_ig", "sig", "ig2", "agi", "samp", "eig", "mig", "ma_gig")
TABLE1_MODELS = ("vgg16", "resnet18", "inception_v1")
TABLE1_DATASETS = (("ImageNet", 500, 1000), ("Oxford-IIIT Pet", 370, 37), ("Oxford 102 Flowers", 500, 102))
TABLE1_SIZE = 256
EXTERNALS = ("captum", "pair", "quantus")
GPU_HOURS_GOAL = 8.0


# ---------------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Config:
    model: str = "resnet18"
    image_size: int = 256
    batch: int = 32
    n_steps: int = 200
    methods: Optional[List[str]] = None
    metrics: Optional[List[str]] = None
    device: str = "cpu"
    out: str = "results/speed"
    vae: str = "auto"
    num_classes: int = 1000
    max_batch: Optional[int] = None
    autocast: str = "none"
    channels_last: bool = False
    cudnn_benchmark: bool = True
    repeats: int = 1
    warmup: bool = True
    threads: Optional[int] = None
    blas_threads: Optional[int] = None
    loops: bool = True
    loop_images: int = 2
    loop_steps: int = 8
    real_loop_images: Optional[int] = None
    externals: Tuple[str, ...] = EXTERNALS
    bound_chunks: Optional[List[int]] = None
    calib_min_sec: Optional[float] = None
    estimate_models: List[str] = field(default_factory=list)
    estimate: bool = True
    recalibrate: bool = True
    overrides: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    seed: int = 0
    quick: bool = False
    verbose: bool = True
    command: str = ""


def _csv_list(text: Optional[str]) -> Optional[List[str]]:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv: Optional[Sequence[str]] = None) -> Config:
    p = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="CPU smoke benchmark: tiny model (timm test_resnet) at 32x32, n_steps 32, batch 8, small VAE")
    p.add_argument("--model", default=None, help="tiny | resnet18 | vgg16 | inception_v1 | any timm name")
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
                        "spinning threads make small SciPy calls (PIC's interpolation) up to 1000x slower")
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
                        "(default: none on cpu, vgg16,resnet18,inception_v1 on cuda)")
    p.add_argument("--no-estimate", action="store_true", help="do not write the table-1 estimate")
    p.add_argument("--no-recalibrate", action="store_true",
                   help="measure the per-row times once (default: again at the end, keeping the faster)")
    p.add_argument("--set", action="append", default=[], metavar="NAME.KEY=VALUE",
                   help="keyword for one method or metric (YAML value), e.g. samp.max_iter=200; repeatable")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)

    cfg = Config()
    cfg.command = "python -m benchmarks.speed " + " ".join(
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
    cfg.estimate_models = em if em is not None else (list(TABLE1_MODELS) if cfg.device == "cuda" else [])
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


# ---------------------------------------------------------------------------------------------------------------
# Device helpers: synchronisation, memory, timing
# ---------------------------------------------------------------------------------------------------------------
def device_tag(device: torch.device) -> str:
    if device.type != "cuda":
        return "cpu"
    name = torch.cuda.get_device_name(device)
    return "cuda-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def make_sync(device: torch.device):
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def _proc_status_kb(field_name: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            m = re.search(rf"^{field_name}:\s+(\d+)\s+kB", f.read(), re.M)
        return int(m.group(1)) if m else None
    except OSError:
        return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class MemoryProbe:
    """Peak memory of one call above the level before it (see the module docstring for the CPU method)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.method = ""
        self.peak_mb = float("nan")

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            self.method = "cuda_max_memory_allocated"
        else:
            self._rss = _proc_status_kb("VmRSS")
            if self._rss is not None and _reset_hwm() and _proc_status_kb("VmHWM") is not None:
                self.method = "rss_peak(VmHWM reset)"
            else:
                self._maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                self.method = "ru_maxrss_growth"
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mb = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2 ** 20
        elif self.method.startswith("rss"):
            self.peak_mb = max(0, (_proc_status_kb("VmHWM") or 0) - self._rss) / 1024
        else:
            self.peak_mb = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self._maxrss) / 1024
        return False


def timed(fn, device: torch.device, repeats: int = 1):
    """(min seconds over ``repeats`` calls, peak MB of the first, mem method, output of the first call)."""
    sync = make_sync(device)
    best, out, peak, how = math.inf, None, float("nan"), ""
    for r in range(repeats):
        gc.collect()
        with MemoryProbe(device) as mem:
            sync()
            t0 = time.perf_counter()
            res = fn()
            sync()
            dt = time.perf_counter() - t0
        if r == 0:
            out, peak, how = res, mem.peak_mb, mem.method
        best = min(best, dt)
    return best, peak, how, out


def _load1() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


# ---------------------------------------------------------------------------------------------------------------
# Model, images, VAE
# ---------------------------------------------------------------------------------------------------------------
def build_model(name: str, num_classes: int, device: torch.device, channels_last: bool, seed: int = 0):
    """A random-weight classifier in eval mode with frozen parameters (as the harness builds them)."""
    torch.manual_seed(seed)
    cfg_path = Path(__file__).resolve().parents[2] / "configs" / "model" / f"{name}.yaml"
    if name == "tiny":
        import timm

        model = timm.create_model("test_resnet", pretrained=False, num_classes=num_classes)
    elif cfg_path.exists() and name != "mnist_cnn":
        import yaml

        from attribution.classifiers import build_classifier

        cfg = yaml.safe_load(cfg_path.read_text())
        cfg.update(pretrained=False, checkpoint=None, num_classes=num_classes, in_chans=3)
        model = build_classifier(**cfg).model
    else:
        import timm

        model = timm.create_model(name, pretrained=False, num_classes=num_classes)
    model = model.eval().requires_grad_(False).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def smooth_images(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    """Random pictures in [0, 1] (a few smooth blobs plus mild noise), so blur/WebP/SVD see image-like content."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(batch, 3, 4, 4, generator=g)
    mid = torch.rand(batch, 3, max(2, size // 8), max(2, size // 8), generator=g)
    up = torch.nn.functional.interpolate
    pix = 0.6 * up(low, size=(size, size), mode="bicubic", align_corners=False)
    pix = pix + 0.3 * up(mid, size=(size, size), mode="bilinear", align_corners=False)
    pix = pix + 0.1 * torch.rand(batch, 3, size, size, generator=g)
    return pix.clamp(0, 1)


def normalize(pix: torch.Tensor) -> torch.Tensor:
    m = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    s = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (pix - m.to(pix)) / s.to(pix)


def build_vae(kind: str, device: torch.device, seed: int = 0, channels_last: bool = False):
    """A diffusers AutoencoderKL with random weights wrapped in the library's VAEAdapter (nothing downloaded);
    ``channels_last``: its convolution weights in NHWC (cuDNN's faster layout on GPUs; the maths is unchanged)."""
    from diffusers import AutoencoderKL

    from attribution.vae import VAEAdapter

    torch.manual_seed(seed)
    if kind == "sd":
        net = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(128, 256, 512, 512),
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            layers_per_block=2, latent_channels=4, norm_num_groups=32, sample_size=256)
    else:
        net = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(16, 32, 32, 32),
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            layers_per_block=1, latent_channels=4, norm_num_groups=8, sample_size=64)
    net = net.to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return VAEAdapter(net, kind="kl", name=f"random AutoencoderKL ({kind})", source=None)


# ---------------------------------------------------------------------------------------------------------------
# Lower bound: seconds per row at the best chunk size
# ---------------------------------------------------------------------------------------------------------------
def _autocast_ctx(device, autocast):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(autocast)
    return torch.autocast(device_type=device.type, dtype=dtype) if dtype else contextlib.nullcontext()


def sec_per_row(fn, rows: int, device: torch.device, min_sec: float) -> float:
    """Seconds per row of ``fn`` (one call = ``rows`` rows): one untimed call, then calls until ``min_sec``."""
    sync = make_sync(device)
    fn()
    sync()
    calls, t0 = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        sync()
        el = time.perf_counter() - t0
        if (el >= min_sec and calls >= 2) or el >= 10 * min_sec:
            return el / (calls * rows)


def _time_chunk(res, fns, chunk: int, device: torch.device, min_sec: float, log, label: str) -> bool:
    """Time every ``fns[key]`` at ``chunk`` rows into ``res[key][chunk]``; False once the device runs out of memory."""
    try:
        for key, fn in fns.items():
            res[key][chunk] = sec_per_row(fn, chunk, device, min_sec)
    except RuntimeError as err:
        if not is_oom(err):
            raise
        if device.type == "cuda":
            torch.cuda.empty_cache()
        log(f"  {label} {chunk}: out of memory, stopping the sweep")
        return False
    return True


def _best(res):
    """{key: (best seconds per row, its chunk, {chunk: seconds})} for the keys that were timed."""
    return {k: (d[min(d, key=d.get)], min(d, key=d.get), d) for k, d in res.items() if d}


def calibrate_classifier(model, size: int, device: torch.device, chunks: Sequence[int], min_sec: float,
                         autocast: str = "none", channels_last: bool = False, num_classes: int = 1000,
                         log=print) -> Dict[str, Tuple[float, int, Dict[int, float]]]:
    """Best seconds per row of the classifier: {"fb": (sec, chunk, {chunk: sec}), "f": ...}."""
    res = {"fb": {}, "f": {}}
    for c in chunks:
        x = normalize(smooth_images(c, size, seed=123)).to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        t = torch.randint(0, num_classes, (c,), generator=torch.Generator().manual_seed(0)).to(device)

        def fb():
            with torch.enable_grad():
                xr = x.detach().requires_grad_(True)
                with _autocast_ctx(device, autocast):
                    logits = model(xr)
                p = torch.softmax(logits.float(), -1).gather(1, t.view(-1, 1)).sum()
                torch.autograd.grad(p, xr)

        def f():
            with torch.no_grad(), _autocast_ctx(device, autocast):
                torch.softmax(model(x).float(), -1).gather(1, t.view(-1, 1))

        if not _time_chunk(res, {"fb": fb, "f": f}, c, device, min_sec, log, "chunk"):
            break
    return _best(res)


def calibrate_vae(vae, size: int, device: torch.device, chunks: Sequence[int], min_sec: float,
                  autocast: str = "none", log=print) -> Dict[str, Tuple[float, int, Dict[int, float]]]:
    """Best seconds per row of the decoder without graph ("decoder_f"), decoder forward+backward to z
    ("decoder_fb") and encoder ("encoder")."""
    pix = normalize(smooth_images(1, size, seed=5)).to(device)
    z1 = vae.encode(pix)
    res = {"decoder_f": {}, "decoder_fb": {}, "encoder": {}}
    for c in chunks:
        z = z1.expand(c, *z1.shape[1:]).contiguous()
        x = pix.expand(c, -1, -1, -1).contiguous()

        def dec_f():
            with torch.no_grad(), _autocast_ctx(device, autocast):
                vae.decode(z)

        def dec_fb():
            with torch.enable_grad():
                zr = z.detach().requires_grad_(True)
                with _autocast_ctx(device, autocast):
                    out = vae.decode(zr)
                torch.autograd.grad(out.float().sum(), zr)

        def enc():
            with _autocast_ctx(device, autocast):
                vae.encode(x)

        if not _time_chunk(res, {"decoder_f": dec_f, "decoder_fb": dec_fb, "encoder": enc}, c, device, min_sec,
                           log, "VAE chunk"):
            break
    return _best(res)


def lower_bound(rows: Dict[str, float], t: Dict[str, float]) -> Optional[float]:
    """Seconds per image of ``rows`` (per image: fb, f, b, decoder_f, decoder_b, encoder) at the best per-row times
    ``t`` (classifier_fb, classifier_f, decoder_f, decoder_fb, encoder). Decoder rows with a backward cost
    ``decoder_fb`` (forward with graph + backward), the other decoder forwards ``decoder_f``; an extra backward row
    (``b``, AGI/IG2) costs ``classifier_fb - classifier_f``. None when a needed time is missing."""
    def need(key):
        if key not in t:
            raise KeyError(key)
        return t[key]

    try:
        total = rows.get("fb", 0) * need("classifier_fb") if rows.get("fb", 0) else 0.0
        if rows.get("f", 0):
            total += rows["f"] * need("classifier_f")
        if rows.get("b", 0):
            total += rows["b"] * max(0.0, need("classifier_fb") - need("classifier_f"))
        dec_b = rows.get("decoder_b", 0) or 0
        dec_f = max(0.0, (rows.get("decoder_f", 0) or 0) - dec_b)
        if dec_b:
            total += dec_b * need("decoder_fb")
        if dec_f:
            total += dec_f * need("decoder_f")
        if rows.get("encoder", 0):
            total += rows["encoder"] * need("encoder")
    except KeyError:
        return None
    return total


# ---------------------------------------------------------------------------------------------------------------
# Building methods and metrics
# ---------------------------------------------------------------------------------------------------------------
def _params(factory) -> Dict[str, inspect.Parameter]:
    """The factory's keyword options along its class hierarchy (the registry's view)."""
    from attribution.registry import option_parameters

    return dict(option_parameters(factory) or {})


def method_kwargs(name: str, cfg: Config, vae, warm: bool = False, chunk_rows: Optional[int] = None):
    """Keyword arguments of ``build_method(name, ...)`` for this benchmark (``warm``: a short warm-up config)."""
    import attribution

    factory = attribution.METHODS.get(name)
    params = _params(factory)
    kw: Dict[str, Any] = {}
    if "mean" in params:
        kw.update(mean=IMAGENET_MEAN, std=IMAGENET_STD)
    if "n_steps" in params:
        kw["n_steps"] = cfg.n_steps
    if "steps" in params:
        kw["steps"] = cfg.n_steps + 1  # IG2: the authors' 201 for N = 200
    if "max_batch" in params and cfg.max_batch:
        kw["max_batch"] = cfg.max_batch
    if "autocast" in params and cfg.autocast != "none":
        kw["autocast"] = cfg.autocast
    if "num_classes" in params:
        kw["num_classes"] = cfg.num_classes
    if getattr(factory, "needs_vae", False) or "vae" in params:
        kw["vae"] = vae
    kw.update(cfg.overrides.get(name, {}))
    if warm:
        rows = chunk_rows or 32
        short = max(3, -(-rows // max(1, cfg.batch)) + 2)
        if "n_steps" in kw:
            kw["n_steps"] = min(kw["n_steps"], short)
        if "steps" in kw:
            kw["steps"] = min(kw["steps"], 3)
        if "max_iter" in params:
            kw["max_iter"] = min(kw.get("max_iter") or 3, 3)
        if "max_iterations" in params:
            kw["max_iterations"] = min(kw.get("max_iterations", 1), 1)
    return kw


def metric_kwargs(name: str, cfg: Config) -> Dict[str, Any]:
    import attribution

    params = _params(attribution.METRICS.get(name))
    kw: Dict[str, Any] = {}
    if "mean" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kw.update(mean=IMAGENET_MEAN, std=IMAGENET_STD)
    if name == "pic":
        kw["min_pred_value"] = 0.0  # random weights: keep every image (the work, not the score, is measured)
    if "max_batch" in params and cfg.max_batch:
        kw["max_batch"] = cfg.max_batch
    kw.update(cfg.overrides.get(name, {}))
    return kw


def metric_levels(metric, name: str, shape) -> Optional[int]:
    """Perturbed images per image ("levels") of a perturbation metric, for the equivalent-work comparison."""
    _, c, h, w = shape
    if name == "diffid":
        return 2 * len(metric.ratios)
    if name == "insertion_deletion":
        return 2 * (metric.n_steps(h, w) + 1)
    if name == "pic":
        return 2 + len(metric.thresholds)
    if name.startswith("quantus") and getattr(metric, "metric_name", "") == "PixelFlipping":
        fis = metric.quantus_kwargs(shape)["features_in_step"]
        return int(math.ceil(c * h * w / fis))
    return None


# ---------------------------------------------------------------------------------------------------------------
# External implementations (captum, PAIR saliency, Quantus)
# ---------------------------------------------------------------------------------------------------------------
def _score(logits, target, objective="prob"):
    if objective == "logit":
        return logits.gather(1, target.view(-1, 1)).squeeze(1)
    return torch.softmax(logits.float(), -1).gather(1, target.view(-1, 1)).squeeze(1)


def pair_call_model_function(model, device, objective="prob"):
    """PAIR saliency's ``call_model_function``: numpy [n,H,W,C] -> input gradients of the target score."""
    from saliency.core import INPUT_OUTPUT_GRADIENTS

    def fn(x_value_batch, call_model_args=None, expected_keys=None):
        arr = torch.from_numpy(np.ascontiguousarray(x_value_batch, dtype=np.float32)).permute(0, 3, 1, 2)
        xr = arr.to(device).requires_grad_(True)
        t = torch.full((xr.shape[0],), int(call_model_args["target"]), device=device, dtype=torch.long)
        (g,) = torch.autograd.grad(_score(model(xr), t, objective).sum(), xr)
        return {INPUT_OUTPUT_GRADIENTS: g.permute(0, 2, 3, 1).detach().cpu().numpy()}

    return fn


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().permute(1, 2, 0).cpu().numpy().astype(np.float64)


EXTERNAL_NOTES = {
    "pair.IntegratedGradients": "PAIR's variant: mean of the gradients at N points including both ends",
    "pair.GuidedIG": "PAIR's variant: N gradient steps (max_dist=1), N+1 points",
    "pair.BlurIG": "PAIR's variant: scipy zero-padded blur, gradient x finite-difference d blur / d sigma",
}


@contextlib.contextmanager
def numpy_quantile_interpolation():
    """PAIR saliency 0.2 calls ``np.quantile(..., interpolation=...)``, a keyword NumPy 2 removed (now ``method``);
    translate it for the duration of a call (no change to the installed package)."""
    orig = np.quantile
    if "interpolation" in inspect.signature(orig).parameters:
        yield
        return

    def quantile(a, q, *args, interpolation=None, **kw):
        if interpolation is not None:
            kw.setdefault("method", interpolation)
        return orig(a, q, *args, **kw)

    np.quantile = quantile
    try:
        yield
    finally:
        np.quantile = orig


def external_runs(name: str, method, model, cfg: Config, device) -> List[Tuple[str, Any]]:
    """[(external name, fn(x, target, n_steps) -> attributions [B,C,H,W])] for a method; libraries are imported
    here, outside the timed calls."""
    runs = []
    chunk = getattr(method.evaluator, "max_batch", None) or default_max_batch(device, (3, cfg.image_size,
                                                                                         cfg.image_size))
    objective = getattr(method, "objective", "prob")
    if name == "ig" and "captum" in cfg.externals:
        from captum.attr import IntegratedGradients as CaptumIG

        def captum_ig(x, target, n):
            ig = CaptumIG(lambda inp: torch.softmax(model(inp), -1))
            return ig.attribute(x, baselines=method.baseline_for(x), target=target, n_steps=n - 1,
                                method="riemann_left", internal_batch_size=chunk).detach()

        runs.append(("captum.IntegratedGradients", captum_ig))
        EXTERNAL_NOTES["captum.IntegratedGradients"] = "left Riemann sum over the same N - 1 points as ours"
    if "pair" not in cfg.externals or name not in ("ig", "guided_ig", "blur_ig"):
        return runs
    import saliency.core as pair

    cmf = pair_call_model_function(model, device, objective)

    def per_image(fn):
        def run(x, target, n):
            with numpy_quantile_interpolation():
                out = [fn(x, target, i, n) for i in range(len(x))]
            return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float()

        return run

    if name == "ig":
        runs.append(("pair.IntegratedGradients", per_image(lambda x, t, i, n: pair.IntegratedGradients().GetMask(
            _hwc(x[i]), cmf, {"target": int(t[i])}, x_baseline=_hwc(method.baseline_for(x[i:i + 1])[0]),
            x_steps=n, batch_size=chunk))))
    elif name == "guided_ig":
        runs.append(("pair.GuidedIG", per_image(lambda x, t, i, n: pair.GuidedIG().GetMask(
            _hwc(x[i]), cmf, {"target": int(t[i])}, x_baseline=_hwc(method.baseline_for(x[i:i + 1])[0]),
            x_steps=n, fraction=method.fraction, max_dist=1.0))))
    elif name == "blur_ig":
        runs.append(("pair.BlurIG", per_image(lambda x, t, i, n: pair.BlurIG().GetMask(
            _hwc(x[i]), cmf, {"target": int(t[i])}, max_sigma=method.max_sigma, steps=n, grad_step=0.01,
            sqrt=method.sqrt, batch_size=chunk))))
    return runs


def pic_targets(metric, model, x: torch.Tensor) -> torch.Tensor:
    """Per image the class with the largest p(x) - p(fully blurred x): PIC's skip rules (low prediction, blurred
    prediction >= original) then keep every image for SIC, so the benchmark times the full work."""
    from attribution.metrics.pic import blurred_image

    imgs = metric.to_uint8(x)
    masks = metric.seed_masks(imgs)
    blurred = [blurred_image(imgs[i], masks[i]) for i in range(len(imgs))]
    with torch.no_grad():
        p0 = torch.softmax(model(metric.from_uint8(list(imgs), x.device)).float(), -1)
        p1 = torch.softmax(model(metric.from_uint8(blurred, x.device)).float(), -1)
    return (p0 - p1).argmax(1)


def pair_pic_run(metric, model, x, attr, target):
    """PAIR saliency's ``compute_pic_metric`` per image, SIC and AIC (two calls), on the same uint8 images,
    saliency maps and seed masks as the library's PIC."""
    from saliency.metrics import pic as pair_pic

    from attribution.metrics._compat import numpy_trapz

    imgs = metric.to_uint8(x)
    masks = metric.seed_masks(imgs)
    sal = metric.saliency_map(attr)
    device = x.device

    def run():
        for i in range(len(imgs)):
            t = int(target[i])

            def probs(batch, t=t):
                with torch.no_grad():
                    out = model(metric.from_uint8(list(batch), device)).float()
                return torch.softmax(out, -1)[:, t].cpu().numpy()

            def correct(batch, t=t):
                with torch.no_grad():
                    out = model(metric.from_uint8(list(batch), device)).float()
                return (out.argmax(1) == t).float().cpu().numpy()

            for fn in (probs, correct):
                try:
                    with numpy_trapz():
                        pair_pic.compute_pic_metric(
                            img=imgs[i], saliency_map=sal[i], random_mask=masks[i], pred_func=fn,
                            saliency_thresholds=list(metric.thresholds), min_pred_value=0.0,
                            keep_monotonous=metric.keep_monotonous, num_data_points=metric.num_data_points)
                except pair_pic.ComputePicMetricError:
                    pass

    return run


# ---------------------------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------------------------
def _rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def _fmt(v, digits=3):
    if v is None or v == "" or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 100:
            return f"{v:.0f}"
        return f"{v:.{digits}g}"
    return str(v)


class SpeedBench:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.device = torch.device(cfg.device)
        self.tag = device_tag(self.device)
        self.sync = make_sync(self.device)
        self.rows: List[Dict[str, Any]] = []
        self.t_rows: Dict[str, float] = {}
        self.start = time.perf_counter()

    # -- logging / rows -------------------------------------------------------------------------------------
    def log(self, msg: str):
        if self.cfg.verbose:
            print(f"[{time.perf_counter() - self.start:7.1f}s] {msg}", flush=True)

    def base_row(self, kind: str, name: str, batch=None, model=None, size=None) -> Dict[str, Any]:
        """A CSV row of this run's configuration (``n_steps`` = the run's ``--n-steps``, also for the methods and
        metrics without steps, so that every row of a run shares one configuration key)."""
        c = self.cfg
        calib = kind == "calibration"
        return {"kind": kind, "name": name, "device": self.tag, "model": model or c.model,
                "image_size": size or c.image_size, "batch": c.batch if batch is None else batch,
                "n_steps": "" if calib else c.n_steps, "status": "ok", "autocast": c.autocast,
                "channels_last": c.channels_last,
                "threads": torch.get_num_threads() if not c.blas_threads else
                f"{torch.get_num_threads()} (BLAS {c.blas_threads})", "load1": _load1(), "torch": torch.__version__,
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"), "command": c.command, "notes": ""}

    # -- set-up ---------------------------------------------------------------------------------------------
    def setup(self):
        c = self.cfg
        if c.threads:
            torch.set_num_threads(c.threads)
        if c.blas_threads:
            import scipy.interpolate  # noqa: F401 - load SciPy's own OpenBLAS first: threadpoolctl only limits
            import scipy.linalg  # noqa: F401   the libraries already loaded
            import scipy.spatial  # noqa: F401
            from threadpoolctl import threadpool_limits

            self._blas_limit = threadpool_limits(limits=c.blas_threads, user_api="blas")
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = c.cudnn_benchmark
        torch.manual_seed(c.seed)
        self.model = build_model(c.model, c.num_classes, self.device, c.channels_last, c.seed)
        x = normalize(smooth_images(c.batch, c.image_size, c.seed)).to(self.device)
        if c.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            self.target = self.model(x).argmax(1)
        self.x = x
        import attribution

        self.methods = c.methods if c.methods is not None else attribution.available_methods()
        all_metrics = attribution.available_metrics()
        default_metrics = [m for m in all_metrics if not m.startswith("quantus")] + \
            [m for m in ("quantus_pixel_flipping",) if m in all_metrics]
        self.metrics = c.metrics if c.metrics is not None else default_metrics
        needs_vae = []
        for m in self.methods:
            try:
                needs_vae.append(getattr(attribution.METHODS.get(m), "needs_vae", False))
            except KeyError:
                pass
        kind = c.vae if c.vae != "auto" else ("sd" if self.device.type == "cuda" else "small")
        self.vae_kind = kind
        use_vae = any(needs_vae) and kind != "none"
        self.vae = build_vae(kind, self.device, c.seed, c.channels_last) if use_vae else None
        self.log(f"device {self.tag}, model {c.model} {c.image_size}x{c.image_size}, batch {c.batch}, "
                 f"n_steps {c.n_steps}, threads {torch.get_num_threads()}, load {_load1()}, "
                 f"VAE {kind if self.vae is not None else '-'}")

    def chunks(self) -> List[int]:
        if self.cfg.bound_chunks:
            return self.cfg.bound_chunks
        if self.device.type == "cuda":
            return [1, 8, 32, 64, 128, 256, 512]
        return [1, 4, 8, 16, 32, 64]

    def min_sec(self) -> float:
        if self.cfg.calib_min_sec is not None:
            return self.cfg.calib_min_sec
        return 0.2 if self.device.type == "cuda" else 0.5

    def calibrate(self, model=None, model_name=None, size=None, vae=True):
        """Lower-bound per-row times; appends ``cal.*`` rows and returns {key: sec}."""
        c = self.cfg
        model, model_name, size = model or self.model, model_name or c.model, size or c.image_size
        self.log(f"calibrating per-row times of {model_name} at {size}x{size} (chunks {self.chunks()})")
        out = {}
        res = calibrate_classifier(model, size, self.device, self.chunks(), self.min_sec(), c.autocast,
                                   c.channels_last, c.num_classes, self.log)
        res = {f"classifier_{k}": v for k, v in res.items()}
        if vae and self.vae is not None:
            vchunks = [ch for ch in self.chunks() if ch <= (32 if self.device.type == "cuda" else 4)] or [1]
            res.update(calibrate_vae(self.vae, size, self.device, vchunks, self.min_sec(), c.autocast, self.log))
        for key, (sec, best, per) in res.items():
            row = self.base_row("calibration", f"cal.{key}", batch="", model=model_name, size=size)
            row.update(sec_per_image=sec, notes=f"sec per row at the best chunk {best}; per chunk: " +
                       ", ".join(f"{k}:{v:.3g}" for k, v in per.items()))
            if key.startswith("decoder") or key == "encoder":
                row["notes"] += f"; VAE {self.vae_kind}"
            self.rows.append(row)
            out[key] = sec
            self.log(f"  {key}: {sec * 1e3:.3f} ms/row (chunk {best})")
        return out

    # -- methods --------------------------------------------------------------------------------------------
    def run_method(self, name: str) -> Optional[torch.Tensor]:
        import attribution
        from attribution.vae import VAEPassCounter

        from .. import reference_loops as rl

        c, x, y, model = self.cfg, self.x, self.target, self.model
        row = self.base_row("method", name)
        try:
            factory = attribution.METHODS.get(name)
            if getattr(factory, "needs_vae", False) and self.vae is None:
                row.update(status="skipped", notes="needs a VAE (--vae none)")
                self.rows.append(row)
                return None
            kw = method_kwargs(name, c, self.vae)
            method = attribution.build_method(name, **kw)
            chunk_rows = method.evaluator.chunk_size(self.device, x.shape[1:])
            if c.warmup:
                warm = attribution.build_method(name, **method_kwargs(name, c, self.vae, True, chunk_rows))
                warm(model, x, y)
                self.sync()
        except Exception as err:  # noqa: BLE001 - a method still in progress must not stop the benchmark
            row.update(status="skipped", notes=f"failed to build/warm up: {type(err).__name__}: {err}"[:300])
            self.rows.append(row)
            self.log(f"{name}: SKIPPED ({row['notes']})")
            return None
        vae = getattr(method, "vae", None)
        try:
            with attribution.PassCounter(model) as pc, \
                    (VAEPassCounter(vae) if vae is not None else contextlib.nullcontext()) as vc:
                sec, peak, how, out = timed(lambda: method.attribute(model, x, y), self.device, c.repeats)
        except Exception as err:  # noqa: BLE001
            row.update(status="error", notes=f"{type(err).__name__}: {err}"[:300])
            self.rows.append(row)
            self.log(f"{name}: ERROR ({row['notes']})")
            if self.device.type == "cuda":
                gc.collect()
                torch.cuda.empty_cache()
            return None
        b = x.shape[0]
        cost = method.cost(c.image_size, c.image_size)
        per = {"fb": pc.fb / b / c.repeats, "f": pc.f / b / c.repeats}
        if vc is not None:
            d = vc.as_dict()
            per.update(decoder_f=d["decoder_f"] / b / c.repeats, decoder_b=d["decoder_b"] / b / c.repeats,
                       encoder=d["encoder"] / b / c.repeats)
        if cost.get("b") and cost.get("fb"):
            per["b"] = cost["b"] * per["fb"] / cost["fb"]
        notes = []
        row["method_steps"] = kw.get("n_steps", kw.get("steps", ""))
        exact = all(abs(per.get(k, 0) - v) < 1e-9 for k, v in cost.items() if k != "b")
        if not exact:
            notes.append("counted rows differ from cost() (upper bound / data dependent)")
        lb = lower_bound(per, self.t_rows)
        row["_rows"] = per
        sec_img = sec / b
        row.update(sec_per_image=sec_img, fb_per_image=per["fb"], f_per_image=per["f"],
                   decoder_f=per.get("decoder_f", ""), decoder_b=per.get("decoder_b", ""),
                   encoder=per.get("encoder", ""), peak_mem_mb=peak, mem_method=how, cost=json.dumps(cost),
                   lower_bound_sec=lb if lb is not None else "",
                   ratio_to_bound=(sec_img / lb) if lb else "")
        if name == "mig" and "mig_sweeps" in out.extras:
            notes.append(f"mig sweeps/image {float(out.extras['mig_sweeps'].float().mean()):.2f}")
        if vae is not None:
            notes.append(f"VAE {self.vae_kind}")
        attr = out.attr.detach()
        self.log(f"{name}: {sec_img * 1e3:.1f} ms/image, fb {per['fb']:.1f}, f {per['f']:.1f}"
                 + (f", ratio to bound {sec_img / lb:.2f}" if lb else ""))
        # -- the authors' per-image loop
        if c.loops and name in rl.LOOPS:
            try:
                real = name in rl.REAL_LOOPS
                extra = {}
                if name == "mig":
                    extra["n_eta"] = self._mig_etas(method, out)
                if name == "agi":
                    extra["num_classes"] = c.num_classes
                run = rl.LOOPS[name](model, x, y, method, sync=self.sync,
                                     max_images=c.real_loop_images if real else c.loop_images,
                                     max_steps=None if real else c.loop_steps, **extra)
                row.update(loop_sec_per_image=run.sec_per_image, loop_mode=run.mode,
                           speedup_vs_loop=run.sec_per_image / sec_img)
                if run.attr is not None:
                    notes.append(f"loop vs ours rel. diff {_rel_diff(run.attr, attr[:len(run.attr)]):.1e}")
                if run.note:
                    notes.append(f"loop: {run.note}")
                self.log(f"  loop ({run.mode}): {run.sec_per_image * 1e3:.1f} ms/image, "
                         f"speedup {run.sec_per_image / sec_img:.2f}x")
            except Exception as err:  # noqa: BLE001
                notes.append(f"loop failed: {type(err).__name__}: {err}"[:200])
                self.log(f"  loop FAILED: {err}")
        elif name in rl.NO_LOOP:
            row["loop_mode"] = "n/a"
            notes.append(rl.NO_LOOP[name])
        # -- captum / PAIR
        try:
            ext_runs = external_runs(name, method, model, c, self.device)
        except Exception as err:  # noqa: BLE001
            ext_runs = []
            notes.append(f"external implementations unavailable: {type(err).__name__}: {err}"[:200])
        n_ext = getattr(method, "n_steps", None) or c.n_steps
        for ext_name, fn in ext_runs:
            erow = self.base_row("external", ext_name)
            try:
                if c.warmup:
                    fn(x[:1], y[:1], 3)
                    self.sync()
                with attribution.PassCounter(model) as epc:
                    esec, epeak, ehow, eattr = timed(lambda: fn(x, y, n_ext), self.device, 1)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                esec_img = esec / b
                erow.update(sec_per_image=esec_img, fb_per_image=epc.fb / b, f_per_image=epc.f / b,
                            peak_mem_mb=epeak, mem_method=ehow, lower_bound_sec=row["lower_bound_sec"],
                            ratio_to_bound=(esec_img / lb) if lb else "", _rows=per,
                            notes=f"equivalent work to {name} ({EXTERNAL_NOTES.get(ext_name, '')}); rel. diff to "
                                  f"ours {_rel_diff(eattr, attr.cpu()):.1e}")
                if not row.get("external"):
                    row.update(external=ext_name, external_sec_per_image=esec_img,
                               speedup_vs_external=esec_img / sec_img)
                self.log(f"  {ext_name}: {esec_img * 1e3:.1f} ms/image ({esec_img / sec_img:.2f}x ours)")
            except Exception as err:  # noqa: BLE001
                erow.update(status="error", notes=f"{type(err).__name__}: {err}"[:300])
                self.log(f"  {ext_name} FAILED: {err}")
            self.rows.append(erow)
        row["notes"] = "; ".join(notes)
        self.rows.append(row)
        del out
        if self.device.type == "cuda":
            gc.collect()
            torch.cuda.empty_cache()
        return attr

    def _mig_etas(self, method, out) -> Optional[float]:
        """Etas per image the authors' MIG would evaluate for the sweeps our run took: (T-2)(2K + [K < max])."""
        sweeps = out.extras.get("mig_sweeps") if hasattr(out, "extras") else None
        if sweeps is None:
            return None
        k = sweeps.float()
        stopped = (k < method.max_iterations).float()
        return float(((method.n_steps - 2) * (2 * k + stopped)).mean())

    # -- metrics --------------------------------------------------------------------------------------------
    def run_metric(self, name: str, attr: torch.Tensor, quantus_per_level: Optional[float]):
        import attribution

        c, x, y, model = self.cfg, self.x, self.target, self.model
        row = self.base_row("metric", name)
        try:
            metric = attribution.build_metric(name, **metric_kwargs(name, c))
            target = pic_targets(metric, model, x) if name == "pic" else y
            if c.warmup:
                metric(model, x[:2], attr[:2], target[:2])
                self.sync()
            with attribution.PassCounter(model) as pc:
                sec, peak, how, out = timed(lambda: metric(model, x, attr, target), self.device, c.repeats)
        except Exception as err:  # noqa: BLE001
            row.update(status="skipped", notes=f"{type(err).__name__}: {err}"[:300])
            self.rows.append(row)
            self.log(f"metric {name}: SKIPPED ({row['notes']})")
            return None
        b = x.shape[0]
        sec_img = sec / b
        f_img = pc.f / b / c.repeats
        lb = lower_bound({"f": f_img}, self.t_rows)
        row["_rows"] = {"f": f_img}
        levels = metric_levels(metric, name, tuple(x.shape))
        notes = []
        if name == "pic":
            kept = int((out["sic_skip"] == 0).sum())
            notes.append(f"SIC kept {kept}/{b} images (targets chosen so that PIC's skip rules keep them)")
        row.update(sec_per_image=sec_img, f_per_image=f_img, fb_per_image=pc.fb / b / c.repeats, peak_mem_mb=peak,
                   mem_method=how, lower_bound_sec=lb if lb is not None else "",
                   ratio_to_bound=(sec_img / lb) if lb else "", levels=levels or "")
        if hasattr(metric, "cost"):
            row["cost"] = json.dumps(metric.cost(c.image_size, c.image_size))
        if quantus_per_level is not None and levels and name in ("diffid", "insertion_deletion"):
            eq = quantus_per_level * levels
            row.update(external=f"quantus.PixelFlipping x {levels} levels", external_sec_per_image=eq,
                       speedup_vs_external=eq / sec_img)
            notes.append("Quantus time scaled linearly from its own level count")
        if name == "pic" and "pair" in c.externals:
            erow = self.base_row("external", "pair.compute_pic_metric")
            try:
                esec, epeak, ehow, _ = timed(pair_pic_run(metric, model, x, attr, target), self.device, 1)
                erow.update(sec_per_image=esec / b, peak_mem_mb=epeak, mem_method=ehow, levels=levels or "",
                            notes="same work as pic: SIC and AIC, one compute_pic_metric call each, per image")
                row.update(external="pair.compute_pic_metric", external_sec_per_image=esec / b,
                           speedup_vs_external=esec / sec)
                self.log(f"  pair pic: {esec / b * 1e3:.1f} ms/image")
            except Exception as err:  # noqa: BLE001
                erow.update(status="error", notes=f"{type(err).__name__}: {err}"[:300])
            self.rows.append(erow)
        row["notes"] = "; ".join(notes)
        self.rows.append(row)
        self.log(f"metric {name}: {sec_img * 1e3:.1f} ms/image, f {f_img:.1f}" +
                 (f", levels {levels}" if levels else ""))
        return row

    # -- estimate calibration -------------------------------------------------------------------------------
    def calibrate_estimate_models(self):
        c = self.cfg
        for m in c.estimate_models:
            if m == c.model and c.image_size == TABLE1_SIZE:
                continue
            try:
                model = build_model(m, c.num_classes, self.device, c.channels_last, c.seed)
                first = m == next(e for e in c.estimate_models if not (e == c.model and c.image_size == TABLE1_SIZE))
                self.calibrate(model, m, TABLE1_SIZE, vae=first and c.image_size != TABLE1_SIZE)
                del model
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
            except Exception as err:  # noqa: BLE001
                self.log(f"estimate calibration of {m} failed: {err}")

    # -- main -----------------------------------------------------------------------------------------------
    def run(self) -> List[Dict[str, Any]]:
        self.setup()
        self.t_rows = self.calibrate()
        attrs = {}
        for name in self.methods:
            a = self.run_method(name)
            if a is not None:
                attrs[name] = a
        if self.metrics:
            attr = attrs.get("ig")
            if attr is None:
                g = torch.Generator().manual_seed(self.cfg.seed)
                attr = torch.randn(tuple(self.x.shape), generator=g).to(self.device)
            ordered = sorted(self.metrics, key=lambda m: 0 if m.startswith("quantus") else 1)
            per_level = None
            for name in ordered:
                r = self.run_metric(name, attr, per_level)
                if r is not None and name == "quantus_pixel_flipping" and r.get("levels"):
                    per_level = r["sec_per_image"] / r["levels"]
        if self.cfg.recalibrate:
            self.recalibrate()
        if self.cfg.estimate and self.cfg.estimate_models:
            self.calibrate_estimate_models()
        self.log("done")
        return self.rows

    def recalibrate(self):
        """Measure the per-row times again after all methods and keep the faster of the two measurements, then
        recompute every bound: on a machine whose load changes during the run, a bound measured once at the start
        can be slower than what the methods later achieve (ratios < 1)."""
        first = [r for r in self.rows if r["kind"] == "calibration"]
        again = self.calibrate()
        fresh = self.rows[-len(again):] if again else []
        del self.rows[len(self.rows) - len(fresh):]
        for old in first:
            key = old["name"][len("cal."):]
            new = next((r for r in fresh if r["name"] == old["name"]), None)
            if new is not None and new["sec_per_image"] < old["sec_per_image"]:
                old.update(sec_per_image=new["sec_per_image"],
                           notes=new["notes"] + "; best of two sweeps (start and end of the run)")
            else:
                old["notes"] += "; best of two sweeps (start and end of the run)"
            self.t_rows[key] = min(self.t_rows.get(key, math.inf), again.get(key, math.inf))
        for r in self.rows:
            per = r.get("_rows")
            sec = _num(r.get("sec_per_image"))
            if per is None or sec is None:
                continue
            lb = lower_bound(per, self.t_rows)
            r.update(lower_bound_sec=lb if lb is not None else "", ratio_to_bound=(sec / lb) if lb else "")


# ---------------------------------------------------------------------------------------------------------------
# Output: CSV merge, Markdown, goals, table-1 estimate
# ---------------------------------------------------------------------------------------------------------------
def _key(row: Dict[str, Any], cols=KEY) -> Tuple[str, ...]:
    return tuple(str(row.get(k, "")) for k in cols)


def read_csv(path: Path) -> List[Dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def merge_rows(old: List[Dict[str, Any]], new: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Rows of ``new`` replace rows of ``old`` with the same key; the others are kept (old first)."""
    fresh = {_key(r) for r in new}
    return [r for r in old if _key(r) not in fresh] + list(new)


def write_csv(path: Path, rows: List[Dict[str, Any]]):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _csv_value(r.get(k, "")) for k in COLUMNS})
    os.replace(tmp, path)


def _csv_value(v):
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.6g}"
    return v


def _num(v) -> Optional[float]:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _md_table(header: List[str], rows: List[List[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join((_fmt(v) if not isinstance(v, str) else v).replace("|", "/") for v in r) + " |")
    return "\n".join(out)


def _configs(rows) -> List[Tuple[str, ...]]:
    seen = []
    for r in rows:
        if r.get("kind") in ("method", "metric"):
            k = _key(r, CONFIG_KEY)
            if k not in seen:
                seen.append(k)
    return seen


def _in_config(r, cfg_key) -> bool:
    return _key(r, CONFIG_KEY) == cfg_key


def calibration_times(rows, device: str, model: str, size: int, autocast: str, channels_last: str):
    out = {}
    for r in rows:
        if (r.get("kind") == "calibration" and r.get("device") == device and r.get("model") == model
                and str(r.get("image_size")) == str(size) and str(r.get("autocast")) == str(autocast)
                and str(r.get("channels_last")) == str(channels_last)):
            v = _num(r.get("sec_per_image"))
            if v is not None:
                out[r["name"][len("cal."):]] = v
    return out


def _vae_times(rows, device, size, autocast, channels_last):
    out = {}
    for r in rows:
        if (r.get("kind") == "calibration" and r.get("device") == device and str(r.get("image_size")) == str(size)
                and r.get("name", "").startswith(("cal.decoder", "cal.encoder"))
                and str(r.get("autocast")) == str(autocast) and str(r.get("channels_last")) == str(channels_last)):
            out[r["name"][len("cal."):]] = _num(r.get("sec_per_image"))
    return {k: v for k, v in out.items() if v is not None}


def goals(rows, cfg_key, estimate_hours: Optional[float]) -> List[Tuple[str, str, str]]:
    """[(goal, measured, PASS/FAIL/n.a.)] for one configuration."""
    device, batch = cfg_key[0], cfg_key[3]
    by = {(r["kind"], r["name"]): r for r in rows if _in_config(r, cfg_key)}

    def get(kind, name, col):
        r = by.get((kind, name))
        return None if r is None or r.get("status") != "ok" else _num(r.get(col))

    def verdict(ok):
        return "n/a" if ok is None else ("PASS" if ok else "FAIL")

    out = []
    if device == "cpu":
        ratio = get("method", "ig", "ratio_to_bound")
        out.append(("CPU: IG within 1.25x of the lower bound", _fmt(ratio) + "x" if ratio else "-",
                    verdict(None if ratio is None else ratio <= 1.25)))
        ours, loop = get("method", "guided_ig", "sec_per_image"), get("method", "guided_ig", "loop_sec_per_image")
        frac = ours / loop if ours and loop else None
        out.append(("CPU: Guided IG at most 0.6x the per-step loop's time",
                    (_fmt(frac) + "x") if frac else "-", verdict(None if frac is None else frac <= 0.6)))
    else:
        note = "" if str(batch) == "32" else f" (measured at batch {batch})"
        for names, need in ((("ig", "sig"), 10.0), (("guided_ig", "ma_gig"), 5.0)):
            for n in names:
                s = get("method", n, "speedup_vs_loop")
                out.append((f"GPU: {n} >= {need:.0f}x faster than the per-image loop at batch 32{note}",
                            (_fmt(s) + "x") if s else "-", verdict(None if s is None else s >= need)))
        out.append((f"GPU: table-1 grid within {GPU_HOURS_GOAL:.0f} GPU-hours",
                    (_fmt(estimate_hours) + " h") if estimate_hours is not None else "-",
                    verdict(None if estimate_hours is None else estimate_hours <= GPU_HOURS_GOAL)))
    # Quantus's time over the lower bound of its own forwards: no implementation of the same forwards on this
    # device can be faster than Quantus by more than that
    ceiling = get("metric", "quantus_pixel_flipping", "ratio_to_bound")
    for n in ("diffid", "insertion_deletion"):
        s = get("metric", n, "speedup_vs_external")
        measured = (_fmt(s) + "x") if s else "-"
        if s and ceiling:
            measured += f" (ceiling on this device {_fmt(ceiling)}x: Quantus's time / the forwards it needs)"
        out.append((f"issue 5: {n} >= 10x faster than Quantus PixelFlipping on equivalent work", measured,
                    verdict(None if s is None else s >= 10)))
    return out


# -- table-1 estimate ------------------------------------------------------------------------------------------
def default_costs(vae=None) -> Dict[Tuple[str, int], Dict[str, float]]:
    """cost(256, 256) of every table-1 method with its paper defaults, per dataset class count (AGI depends on it)."""
    import attribution

    if vae is None:
        vae = build_vae("small", torch.device("cpu"))  # cost() does not depend on the VAE; any adapter builds
    out = {}
    for name in TABLE1_METHODS:
        try:
            factory = attribution.METHODS.get(name)
        except KeyError:
            continue
        for _, _, n_cls in TABLE1_DATASETS:
            kw: Dict[str, Any] = {}
            params = _params(factory)
            if getattr(factory, "needs_vae", False) or "vae" in params:
                kw["vae"] = vae
            if "num_classes" in params:
                kw["num_classes"] = n_cls
            try:
                out[(name, n_cls)] = attribution.build_method(name, **kw).cost(TABLE1_SIZE, TABLE1_SIZE)
            except Exception:  # noqa: BLE001
                pass
    return out


def table1_estimate(rows, cfg_key, costs) -> Tuple[str, Optional[float]]:
    """Markdown of the table-1 grid estimate from one configuration's rows, and the total hours."""
    device, model, size, batch, n_steps, autocast, cl = cfg_key
    size = int(size)
    by = {r["name"]: r for r in rows if _in_config(r, cfg_key) and r.get("status") == "ok"}
    base_t = calibration_times(rows, device, model, size, autocast, cl)
    vae_run = _vae_times(rows, device, size, autocast, cl)
    vae_256 = _vae_times(rows, device, TABLE1_SIZE, autocast, cl)
    px = (TABLE1_SIZE / size) ** 2
    lines, assumptions = [], []
    per_model_t = {}
    for m in TABLE1_MODELS:
        t = calibration_times(rows, device, m, TABLE1_SIZE, autocast, cl)
        if "classifier_fb" in t and "classifier_f" in t:
            per_model_t[m] = (t, f"measured ({m}, {TABLE1_SIZE}x{TABLE1_SIZE})")
        elif base_t:
            scale = 1.0 if size == TABLE1_SIZE else px
            per_model_t[m] = ({k: v * scale for k, v in base_t.items() if k.startswith("classifier")},
                              f"assumed = {model} at {size}x{size}" + (f" x {px:.1f} (pixels)" if scale != 1 else ""))
    if vae_256:
        vt, vnote = vae_256, f"measured at {TABLE1_SIZE}x{TABLE1_SIZE}"
    else:
        vt = {k: v * px for k, v in vae_run.items()}
        vnote = f"measured at {size}x{size}" + (f" x {px:.1f} (pixels)" if px != 1 else "")
    if not per_model_t:
        return "No calibration rows for this configuration: no estimate.\n", None

    method_rows, total_sec, missing = [], 0.0, []
    diff = by.get("diffid")
    diff_ratio = _num(diff.get("ratio_to_bound")) if diff else None
    diff_f = _num(diff.get("f_per_image")) if diff else None
    for name in TABLE1_METHODS:
        r = by.get(name)
        if r is None or (name, 1000) not in costs:
            missing.append(name)
            continue
        ratio = _num(r.get("ratio_to_bound"))
        measured_cost = json.loads(r.get("cost") or "{}")
        counted = {"fb": _num(r.get("fb_per_image")) or 0.0, "f": _num(r.get("f_per_image")) or 0.0,
                   "decoder_f": _num(r.get("decoder_f")) or 0.0, "decoder_b": _num(r.get("decoder_b")) or 0.0,
                   "encoder": _num(r.get("encoder")) or 0.0}
        if measured_cost.get("b") and measured_cost.get("fb"):
            counted["b"] = measured_cost["b"] * counted["fb"] / measured_cost["fb"]
        cells, method_sec = [name], 0.0
        for m in TABLE1_MODELS:
            if m not in per_model_t:
                cells.append("")
                continue
            t = dict(per_model_t[m][0])
            t.update(vt)
            sec_m = 0.0
            for _, n_img, n_cls in TABLE1_DATASETS:
                dc = costs.get((name, n_cls), costs[(name, 1000)])
                rows_d = {}
                for k, v in counted.items():
                    mc = measured_cost.get(k)
                    rows_d[k] = v * (dc.get(k, 0) / mc) if mc else (dc.get(k, v) if k in dc else v)
                lb = lower_bound(rows_d, t)
                if lb is None or ratio is None:
                    sec_img = (_num(r.get("sec_per_image")) or 0.0) * px
                else:
                    sec_img = ratio * lb
                d_img = diff_f * t["classifier_f"] * (diff_ratio or 1.0) if diff_f else 0.0
                sec_m += n_img * (sec_img + d_img)
            cells.append(sec_m / 1370)
            method_sec += sec_m
        cells.append(method_sec / 3600)
        total_sec += method_sec
        method_rows.append(cells)
    hours = total_sec / 3600
    unit = "GPU-hours" if device.startswith("cuda") else "CPU-hours"
    lines.append(f"## Configuration: {model} {size}x{size}, batch {batch}, n_steps {n_steps} ({device}, "
                 f"autocast {autocast}, channels_last {cl})\n")
    lines.append(f"**Estimated {unit} for the whole table-1 grid: {hours:.2f}** "
                 f"(3 datasets x 3 models x {len(method_rows)} methods, 1,370 images per (model, method), "
                 f"each scored by DiffID).\n")
    lines.append(_md_table(["method", *(f"{m} s/image (incl. DiffID)" for m in TABLE1_MODELS), unit], method_rows))
    lines.append("")
    lines.append("How it is extrapolated:\n")
    lines.append(f"- per method: measured ratio to the lower bound ({model}, {size}x{size}, batch {batch}, "
                 f"n_steps {n_steps}) x the lower bound of the paper defaults (n_steps 200, Guided IG fraction 0.1, "
                 f"MA-GIG 0.05, ...) at {TABLE1_SIZE}x{TABLE1_SIZE}: documented cost(256, 256) rows x per-row "
                 f"times. Rows of data-dependent methods (AGI, SAMP, MIG) = counted rows x cost(defaults) / "
                 f"cost(measured config), i.e. the same share of their upper bound as measured (random weights: "
                 f"treat SAMP/AGI/MIG as rough).")
    for m, (_, note) in per_model_t.items():
        lines.append(f"- classifier per-row times of {m}: {note}.")
    lines.append(f"- VAE per-row times: {vnote} (VAE of the run, see the `cal.decoder*` rows).")
    lines.append(f"- DiffID: {diff_f:.0f} forward rows per image x per-row time x its measured ratio to the bound "
                 f"({_fmt(diff_ratio)})." if diff_f else "- DiffID: not measured in this configuration (not counted).")
    lines.append("- Images: ImageNet 500, Oxford-IIIT Pet 370, Oxford 102 Flowers 500; AGI's targets per dataset "
                 "(1000/37/102 classes).")
    if missing:
        lines.append(f"- Not measured in this configuration, not counted: {', '.join(missing)}.")
    if device.startswith("cuda"):
        ok = "PASS" if hours <= GPU_HOURS_GOAL else "FAIL"
        lines.append(f"\nGoal: table-1 grid within {GPU_HOURS_GOAL:.0f} GPU-hours: **{ok}** ({hours:.2f} h).")
    else:
        lines.append("\n(CPU figures: the GPU-hours goal is judged only from a CUDA run.)")
    del assumptions
    return "\n".join(lines) + "\n", hours


def render_markdown(rows, device: str, estimates: Dict[Tuple[str, ...], Optional[float]]) -> str:
    dev_rows = [r for r in rows if r.get("device") == device]
    out = [f"# Speed benchmark: {device}\n",
           "Generated by `python -m benchmarks.speed` (see its docstring for the commands). Seconds are wall time per "
           "image of one batched call; `fb`/`f` = classifier rows per image through forward+backward / forward only "
           "(`attribution.PassCounter`); decoder passes counted by hooks on the VAE decoder; `bound` = the same "
           "rows as batched chunks at the best chunk size (`cal.*` rows); `loop` = the authors' per-image, "
           "per-step loop (`benchmarks/reference_loops.py`; *extrapolated* = timed on a subset of images/steps). "
           "Peak memory is above the pre-call level (column `mem_method` of the CSV says how it was measured).\n"]
    loads = [_num(r.get("load1")) for r in dev_rows if _num(r.get("load1")) is not None]
    if device == "cpu" and loads:
        own = max((int(m.group()) for r in dev_rows if (m := re.match(r"\d+", str(r.get("threads") or "")))),
                  default=os.cpu_count() or 1)
        busy = max(loads) > own + 0.5  # the benchmark itself adds about its own thread count to the load
        verdict = ("the machine was shared while these were measured: rerun on a quiet machine for trustworthy "
                   "ratios" if busy else "a quiet machine: the load is the benchmark's own")
        out.append(f"**Noise:** 1-minute load average during the runs {min(loads):.1f}-{max(loads):.1f} on "
                   f"{os.cpu_count()} CPUs ({verdict}).\n")
    for ck in _configs(dev_rows):
        _, model, size, batch, n_steps, autocast, cl = ck
        cr = [r for r in dev_rows if _in_config(r, ck)]
        meta = cr[0]
        out.append(f"## {model}, {size}x{size}, batch {batch}, n_steps {n_steps} "
                   f"(autocast {autocast}, channels_last {cl}, {meta.get('threads')} threads, torch "
                   f"{meta.get('torch')}, {meta.get('timestamp')})\n")
        cmds = sorted({r.get("command") for r in cr if r.get("command")})
        if cmds:
            out.append("Measured with: " + "; ".join(f"`{c}`" for c in cmds) + "\n")
        m_rows = []
        for r in cr:
            if r.get("kind") != "method":
                continue
            if r.get("status") != "ok":
                m_rows.append([r["name"], *([""] * 12), f"{r.get('status')}: {r.get('notes')}"])
                continue
            dec = ""
            if r.get("decoder_f") not in ("", None):
                dec = f"{_fmt(_num(r['decoder_f']))}/{_fmt(_num(r['decoder_b']))}"
            ext = ""
            if r.get("external"):
                ext = f"{r['external']}: {_fmt(_num(r['external_sec_per_image']))} s " \
                      f"({_fmt(_num(r['speedup_vs_external']))}x)"
            m_rows.append([r["name"], str(r.get("method_steps") or "-"), _num(r["sec_per_image"]),
                           _num(r["fb_per_image"]), _num(r["f_per_image"]), dec, _num(r.get("peak_mem_mb")),
                           _num(r.get("lower_bound_sec")),
                           _num(r.get("ratio_to_bound")), _num(r.get("loop_sec_per_image")),
                           str(r.get("loop_mode", "")), _num(r.get("speedup_vs_loop")), ext, r.get("notes", "")])
        if m_rows:
            out.append("### Methods\n")
            out.append(_md_table(["method", "steps", "s/image", "fb/image", "f/image", "decoder f/b",
                                  "peak MB", "bound s/image", "ratio to bound", "loop s/image", "loop",
                                  "speedup vs loop", "captum / PAIR", "notes"], m_rows))
            out.append("")
        x_rows = [[r["name"], _num(r.get("sec_per_image")), _num(r.get("fb_per_image")), _num(r.get("f_per_image")),
                   _num(r.get("peak_mem_mb")), r.get("notes", "") if r.get("status") == "ok" else
                   f"{r.get('status')}: {r.get('notes')}"] for r in cr if r.get("kind") == "external"]
        if x_rows:
            out.append("### External implementations (same work)\n")
            out.append(_md_table(["implementation", "s/image", "fb/image", "f/image", "peak MB", "notes"], x_rows))
            out.append("")
        k_rows = []
        for r in cr:
            if r.get("kind") != "metric":
                continue
            if r.get("status") != "ok":
                k_rows.append([r["name"], *([""] * 7), f"{r.get('status')}: {r.get('notes')}"])
                continue
            k_rows.append([r["name"], _num(r["sec_per_image"]), _num(r.get("f_per_image")), str(r.get("levels", "")),
                           _num(r.get("peak_mem_mb")), _num(r.get("ratio_to_bound")), r.get("external", ""),
                           _num(r.get("speedup_vs_external")), r.get("notes", "")])
        if k_rows:
            out.append("### Metrics\n")
            out.append(_md_table(["metric", "s/image", "f/image", "levels", "peak MB", "ratio to bound",
                                  "compared with", "speedup", "notes"], k_rows))
            out.append("")
        g = goals(rows, ck, estimates.get(ck))
        out.append("### Goals\n")
        out.append(_md_table(["goal", "measured", "verdict"], [list(x) for x in g]))
        out.append("")
    cal = [r for r in dev_rows if r.get("kind") == "calibration"]
    if cal:
        out.append("## Lower-bound calibration (seconds per row at the best chunk size)\n")
        out.append(_md_table(["row", "model", "size", "ms/row", "notes"],
                             [[r["name"], r["model"], str(r["image_size"]), 1e3 * (_num(r["sec_per_image"]) or 0),
                               r.get("notes", "")] for r in cal]))
        out.append("")
    return "\n".join(out)


def write_outputs(new_rows: List[Dict[str, Any]], out_dir: Path, device: str, vae=None, estimate: bool = True,
                  log=print) -> Dict[str, Path]:
    csv_path = out_dir / f"{device}.csv"
    rows = merge_rows(read_csv(csv_path), new_rows)
    write_csv(csv_path, rows)
    rows = read_csv(csv_path)  # everything as strings, as a rerun sees it
    dev_rows = [r for r in rows if r.get("device") == device]
    estimates: Dict[Tuple[str, ...], Optional[float]] = {}
    paths = {"csv": csv_path}
    if estimate:
        costs = default_costs(vae)
        parts = [f"# Table-1 grid estimate: {device}\n",
                 "Extrapolated by `python -m benchmarks.speed` from the measured figures in "
                 f"`{csv_path.name}` (one section per measured configuration; the configuration measured with the "
                 "papers' model and size on a GPU is the one to quote).\n"]
        for ck in _configs(dev_rows):
            text, hours = table1_estimate(dev_rows, ck, costs)
            estimates[ck] = hours
            parts.append(text)
            if hours is not None:
                log(f"table-1 estimate from {ck[1]} {ck[2]}x{ck[2]} (batch {ck[3]}, n_steps {ck[4]}): "
                    f"{hours:.2f} {'GPU' if device.startswith('cuda') else 'CPU'}-hours")
        est_path = out_dir / f"table1_estimate_{device}.md"
        est_path.write_text("\n".join(parts))
        paths["estimate"] = est_path
    md_path = out_dir / f"{device}.md"
    md_path.write_text(render_markdown(rows, device, estimates))
    paths["md"] = md_path
    for ck in _configs(dev_rows):
        for goal, measured, verdict in goals(dev_rows, ck, estimates.get(ck)):
            log(f"[{verdict}] {goal}: {measured}  ({ck[1]} {ck[2]}x{ck[2]}, batch {ck[3]})")
    return paths


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Path]:
    cfg = parse_args(argv)
    bench = SpeedBench(cfg)
    rows = bench.run()
    paths = write_outputs(rows, Path(cfg.out), bench.tag, bench.vae, cfg.estimate, bench.log)
    bench.log(f"wrote {', '.join(str(p) for p in paths.values())}")
    return paths


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main(sys.argv[1:])
