"""Speed benchmark of every attribution method and metric: time, passes, memory, lower bounds, other implementations.

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
  (:mod:`benchmarks.reference`; IG, SIG, Blur IG, Guided IG with its 2N-1 passes and Gradient x Input run for
  real, MA-GIG, EIG, MIG, IG2 and AGI on ``--loop-images`` images / ``--loop-steps`` steps and extrapolated, flagged
  ``extrapolated`` in ``loop_mode``), and by captum (IG: ``captum.attr.IntegratedGradients``, left Riemann sum,
  ``internal_batch_size`` = the method's chunk) and PAIR saliency (``saliency.core`` IntegratedGradients, GuidedIG
  with ``max_dist=1``, BlurIG: per image on numpy through a ``call_model_function``);
- metrics: DiffID, RISE insertion/deletion, PIC, completeness and Quantus PixelFlipping; "equivalent work" =
  Quantus PixelFlipping's seconds per perturbation level times our number of levels (DiffID: 2 x 9,
  insertion/deletion: 2 (n + 1)); PIC against PAIR's ``compute_pic_metric`` (SIC and AIC, per image).

Outputs (one set per device; rows of earlier runs with another configuration are kept, same key = replaced):
``<out>/<device>.csv``, ``<out>/<device>.md`` (tables per configuration, and the measurements checked against the
goals of ``configs/perf/goals.yaml``) and
``<out>/table1_estimate_<device>.md`` (GPU-hours of the whole table-1 grid extrapolated from the measurements).
``<device>`` is ``cpu`` or ``cuda-<gpu name>``.

Models have random weights (nothing is downloaded): ``tiny`` = timm ``test_resnet``; ``resnet18``, ``vgg16``,
``inception_v1``, ``vit_b16`` (torchvision ViT-B/16: ``--image-size 224``), ``mnist_vit`` (``--image-size 28``) = the
harness's ``configs/model/*.yaml`` architectures; any other timm name works too. Inputs are
normalised with the model config's mean/std (models without one: ``resnet18``'s). The table-1 grid of the estimate
(methods, models, datasets and their image and class counts) is ``configs/experiment/table1.yaml``'s. The images
are smooth random pictures; targets are the model's own predictions. The latent methods get a diffusers
``AutoencoderKL`` with random weights: ``--vae sd`` = the Stable Diffusion VAE's shape (block_out_channels
128/256/512/512, 2 layers per block, 4 latent channels), ``--vae small`` = 16/32/32/32, 1 layer (CPU).
Data-dependent counts (AGI's early stops, SAMP's termination, MIG's energy test) depend on the random weights.

Usage::

    # CPU smoke run (timm test_resnet at 32x32, n_steps 32, batch 8, small VAE):
    python -m benchmarks.perf.speed --quick
    # CPU, the papers' ResNet-18 at 128x128:
    python -m benchmarks.perf.speed --model resnet18 --image-size 128 --batch 8 --n-steps 32 --device cpu
    # GPU, the papers' setting; the grid estimate measures the table-1 models at their size:
    python -m benchmarks.perf.speed --device cuda --model resnet18 --image-size 256 --batch 32 --n-steps 200 \\
        --vae sd --estimate-models vgg16,resnet18,inception_v1 --out results/speed
    # to keep each command short, split by methods (rows of a device are merged,
    # the estimate is recomputed from all of them at the end of every invocation), e.g.
    python -m benchmarks.perf.speed --device cuda --model resnet18 --image-size 256 --batch 32 --n-steps 200 --vae sd \\
        --methods grad_input,ig,sig,blur_ig,guided_ig,random --metrics none --no-estimate
    python -m benchmarks.perf.speed --device cuda --model resnet18 --image-size 256 --batch 32 --n-steps 200 --vae sd \\
        --methods ig2,agi,samp --metrics none --no-estimate
    python -m benchmarks.perf.speed --device cuda --model resnet18 --image-size 256 --batch 32 --n-steps 200 --vae sd \\
        --methods ma_gig,eig,mig --metrics none --no-estimate
    python -m benchmarks.perf.speed --device cuda --model resnet18 --image-size 256 --batch 32 --n-steps 200 --vae sd \\
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

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .bench import SpeedBench
from .builders import (
    build_model,
    build_vae,
    method_kwargs,
    metric_kwargs,
    model_config,
    model_norm,
    normalize,
    smooth_images,
)
from .calibrate import calibrate_classifier, calibrate_vae, lower_bound, sec_per_row
from .cli import COLUMNS, CONFIG_KEY, EXTERNALS, KEY, Config, parse_args
from .estimate import Grid, default_costs, table1_estimate, table1_grid
from .goals import goals, load_goals
from .output import render_markdown, write_outputs
from .probes import MemoryProbe, device_tag, make_sync, timed
from .rows import merge_rows, read_csv, write_csv


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    cfg = parse_args(argv)
    bench = SpeedBench(cfg)
    rows = bench.run()
    paths = write_outputs(rows, Path(cfg.out), bench.tag, bench.vae, cfg.estimate, bench.log)
    bench.log(f"wrote {', '.join(str(p) for p in paths.values())}")
    return paths


def _cli() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main(sys.argv[1:])


__all__ = ["SpeedBench", "build_model", "build_vae", "method_kwargs", "metric_kwargs", "model_config", "model_norm",
           "normalize", "smooth_images", "calibrate_classifier", "calibrate_vae", "lower_bound", "sec_per_row",
           "COLUMNS", "CONFIG_KEY", "EXTERNALS", "KEY", "Config", "parse_args", "Grid", "default_costs",
           "table1_estimate", "table1_grid", "goals", "load_goals", "render_markdown", "write_outputs", "MemoryProbe",
           "device_tag", "make_sync", "timed", "merge_rows", "read_csv", "write_csv", "main"]
