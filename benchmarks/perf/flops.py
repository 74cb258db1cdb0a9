"""Network FLOPs per image: our batched methods against the authors' per-image loops, counted, not timed.

A speed-up over the authors' loop on one device has two factors: the work removed (gradient reuse, no duplicate
decodes) and the throughput gained by batching. The first needs no hardware: this module counts it. The unit
costs (classifier forward, forward+backward to the input, VAE decoder forward, decoder forward+backward to the
latent, encoder) are measured with ``torch.utils.flop_counter.FlopCounterMode`` on the ``meta`` device (shapes
only, nothing computed or downloaded), then combined with the rows per image of each method:

- ours: ``method.cost(H, W)`` (the counts the tests check against :class:`attribution.PassCounter`);
- the authors': :data:`benchmarks.reference.UPSTREAM_COSTS` (docs/upstream_methods.md sections 2.13 and 11: batch 1,
  every gradient and decode recomputed).

    FLOPs = fb * C_fb + f * C_f + b * (C_fb - C_f) + decoder_f * D_f + decoder_b * (D_fb - D_f) + encoder * E

Only network FLOPs are counted, and of those what ``FlopCounterMode`` counts: convolutions, matrix products and
attention (normalisations and activations are memory-bound and uncounted; SIG's SVD, Blur IG's blurs and Guided
IG's quantiles are small beside the networks).
The ratio bounds the speed-up that reuse alone gives; the rest must come from batching, which a GPU measures
(``benchmarks.perf.speed``). Writes ``results/speed/flops.md``.

    python -m benchmarks.perf.flops                            # ResNet-18, 256x256, SD-shaped VAE, N = 200
    python -m benchmarks.perf.flops --model vgg16 --n-steps 200
    python -m benchmarks.perf.flops --grid --peak-tflops 495       # the whole table-1 grid, hours at peak
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..reference import UPSTREAM_COSTS

#: the authors' rows per image at N steps (:data:`benchmarks.reference.UPSTREAM_COSTS`); counts as in ``cost()``
UPSTREAM_ROWS = UPSTREAM_COSTS


def count_flops(fn) -> int:
    """FLOPs of the tensor operations that ``fn()`` runs (a multiply-add counts 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops()


def unit_flops(model_name: str, size: int, vae_kind: str = "sd") -> dict:
    """FLOPs of one image through each unit, counted on the meta device."""
    from .speed import build_model, build_vae

    count = count_flops  # short name for the table below
    meta = torch.device("meta")
    with meta:
        model = build_model(model_name, 1000, meta, channels_last=False)
        vae = build_vae(vae_kind, meta) if vae_kind != "none" else None
    x = torch.zeros(1, 3, size, size, device=meta)

    def fb(net, inp):
        r = inp.clone().requires_grad_(True)
        net(r).float().sum().backward()  # parameters are frozen: only the input gradient is formed

    out = {"classifier_f": count(lambda: model(x)), "classifier_fb": count(lambda: fb(model, x))}
    if vae is not None:
        z = torch.zeros(1, 4, size // 8, size // 8, device=meta)  # the SD VAEs: 4 channels, /8
        out.update(decoder_f=count(lambda: vae.decode(z, 3)),
                   decoder_fb=count(lambda: fb(lambda t: vae.decode(t, 3), z)), encoder=count(lambda: vae.encode(x)))
    return out


def flops_of(rows: dict, unit: dict) -> float:
    """FLOPs of a method's rows per image (``b`` = an extra backward through the classifier, as in cost())."""
    dec_b = rows.get("decoder_b", 0)
    return (rows.get("fb", 0) * unit["classifier_fb"] + rows.get("f", 0) * unit["classifier_f"]
            + rows.get("b", 0) * (unit["classifier_fb"] - unit["classifier_f"])
            + rows.get("decoder_f", 0) * unit.get("decoder_f", 0)
            + dec_b * (unit.get("decoder_fb", 0) - unit.get("decoder_f", 0))
            + rows.get("encoder", 0) * unit.get("encoder", 0))


def ours_rows(name: str, n_steps: int, size: int) -> dict:
    import attribution

    from .speed import build_vae

    factory = attribution.METHODS.get(name)
    kw = {"vae": build_vae("small", torch.device("cpu"))} if attribution.method_info(name).needs_vae else {}
    if "n_steps" in _params(factory):
        kw["n_steps"] = n_steps
    return attribution.build_method(name, **kw).cost(size, size)


def _params(factory):
    from attribution.registry import option_parameters

    return option_parameters(factory) or {}


def table(model_name: str, size: int, n_steps: int, vae_kind: str = "sd") -> str:
    import attribution

    unit = unit_flops(model_name, size, vae_kind)
    g = 1e9
    lines = [f"## {model_name}, {size}x{size}, N = {n_steps}, VAE {vae_kind}-shaped AutoencoderKL", "",
             "Unit costs per image (GFLOP): " + ", ".join(f"{k} {v / g:.2f}" for k, v in unit.items()), "",
             "| method | ours: rows/image | ours TFLOP/image | authors' rows/image | authors' TFLOP/image | "
             "work removed (authors / ours) |", "|---|---|---|---|---|---|"]
    for name, upstream in UPSTREAM_ROWS.items():
        if vae_kind == "none" and attribution.method_info(name).needs_vae:
            continue
        ours, theirs = ours_rows(name, n_steps, size), upstream(n_steps)
        fo, ft = flops_of(ours, unit), flops_of(theirs, unit)
        lines.append(f"| {name} | {_rows(ours)} | {fo / 1e12:.3g} | {_rows(theirs)} | {ft / 1e12:.3g} | "
                     f"{ft / fo:.2f}x |")
    return "\n".join(lines) + "\n"


#: rows of cost() that are upper bounds (data-dependent methods: early stops, termination, energy tests)
UPPER_BOUNDS = {"agi": "targets x iterations, no early stop", "samp": "every iteration moves step_size pixels",
                "mig": "every sweep runs its maximum of eta updates"}


def grid_table(peak_tflops: float, vae_kind: str = "sd") -> str:
    """FLOPs of the whole table-1 grid (``configs/experiment/table1.yaml``: models x datasets x methods at the papers'
    image counts and size, paper defaults, plus DiffID's forwards per image: two per ratio) and the GPU-hours it
    needs at ``peak_tflops``."""
    import attribution

    from .speed import default_costs, table1_grid

    grid = table1_grid()
    diffid_f = 2 * len(attribution.metric_info("diffid").levels)
    sizes = {m: grid.size_of(m) for m in grid.models}
    costs_at = {s: default_costs(size=s) for s in set(sizes.values())}
    units = {m: unit_flops(m, sizes[m], vae_kind) for m in grid.models}
    images = sum(n for _, n, _ in grid.datasets)
    px = ", ".join(f"{m} {s}" for m, s in sizes.items())
    lines = [f"## Table-1 grid: {len(grid.models)} models x {len(grid.datasets)} datasets ({images} images) "
             f"x {len(grid.methods)} methods, paper defaults", "",
             f"Input size per model (px): {px}.", "",
             f"Per-image network FLOPs of each (method, model) times the papers' image counts, plus DiffID's "
             f"{diffid_f} forwards per image. *Hours at peak* = FLOPs / {peak_tflops:g} TFLOP/s: the least GPU time "
             f"any implementation needs on a GPU with that dense peak (H100 SXM: ~495 TF32, ~990 BF16); real kernels "
             f"reach a fraction of it.", "",
             "| method | " + " | ".join(f"{m} PFLOP" for m in grid.models) + " | PFLOP (grid) | hours at peak | note |",
             "|---|" + "---|" * len(grid.models) + "---|---|---|"]
    total, per_model = 0.0, dict.fromkeys(grid.models, 0.0)
    for name in grid.methods:
        cells, flop = [], 0.0
        for m in grid.models:
            costs = costs_at[sizes[m]]
            f_m = sum(n_img * (flops_of(costs[(name, n_cls)], units[m]) + flops_of({"f": diffid_f}, units[m]))
                      for _, n_img, n_cls in grid.datasets if (name, n_cls) in costs)
            per_model[m] += f_m
            flop += f_m
            cells.append(f"{f_m / 1e15:.3g}")
        total += flop
        note = f"upper bound ({UPPER_BOUNDS[name]})" if name in UPPER_BOUNDS else ""
        lines.append(f"| {name} | " + " | ".join(cells) +
                     f" | {flop / 1e15:.3g} | {flop / (peak_tflops * 1e12 * 3600):.3g} | {note} |")
    lines.append("| **all** | " + " | ".join(f"**{per_model[m] / 1e15:.4g}**" for m in grid.models) +
                 f" | **{total / 1e15:.4g}** | **{total / (peak_tflops * 1e12 * 3600):.3g}** | |")
    return "\n".join(lines) + "\n"


def _rows(rows: dict) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in rows.items() if v)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.perf.flops", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--n-steps", type=int, default=200)
    ap.add_argument("--vae", default="sd", choices=["sd", "small", "none"])
    ap.add_argument("--grid", action="store_true", help="the whole table-1 grid instead of one model's table")
    ap.add_argument("--peak-tflops", type=float, default=495.0,
                    help="dense peak of the GPU for --grid's hours (default: H100 SXM TF32, ~495)")
    ap.add_argument("--out", default="results/speed/flops.md")
    a = ap.parse_args(argv)
    text = grid_table(a.peak_tflops, a.vae) if a.grid else table(a.model, a.image_size, a.n_steps, a.vae)
    out = Path(a.out)
    head = ("# Network FLOPs per image: ours vs the authors' loops\n\nGenerated by `python -m benchmarks.perf.flops` "
            "(module docstring: what is counted). *Work removed* bounds the speed-up that reuse alone gives on "
            "any device; batching must supply the rest of a speed goal.\n\n")
    sections = {}
    if out.exists():  # keep the other configurations' sections
        for part in out.read_text().split("\n## ")[1:]:
            sections[part.split("\n", 1)[0]] = "## " + part.rstrip("\n") + "\n"
    sections[text.split("\n", 1)[0][3:]] = text
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(head + "\n".join(sections[k] for k in sorted(sections)))
    print(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
