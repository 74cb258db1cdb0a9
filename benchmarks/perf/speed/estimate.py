"""GPU-hours of the whole table-1 grid, extrapolated from one configuration's measurements."""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import torch

from .builders import _params, build_vae, model_config
from .calibrate import lower_bound
from .rows import _fmt, _in_config, _md_table, _num, _vae_times, calibration_times


@dataclass(frozen=True)
class Grid:
    """The table-1 grid as ``configs/experiment/table1.yaml`` declares it."""

    methods: tuple[str, ...]                   # in the papers' row order (the registry's ``order``)
    models: tuple[str, ...]
    datasets: tuple[tuple[str, int, int], ...]  # (label, images, classes) per dataset
    size: int                                   # the largest input size of the models (px)
    sizes: tuple[int, ...] = ()                 # each model's input size (px): 256 the CNNs, 224 the ViT

    @property
    def images(self) -> int:
        return sum(n for _, n, _ in self.datasets)

    def size_of(self, model: str) -> int:
        return dict(zip(self.models, self.sizes)).get(model, self.size)


@functools.lru_cache(maxsize=1)
def table1_grid() -> Grid:
    """Methods, models and datasets of the table-1 sweep (its ``hydra.sweeper.params``), the datasets' image and
    class counts (its ``grid_sizes``) and the models' input size (``configs/model/<name>.yaml``)."""
    import attribution

    from ...run import compose_config, sweep_params

    axes = sweep_params(["experiment=table1"])
    sizes = compose_config(["experiment=table1"], job_name="speed").get("grid_sizes") or {}
    missing = [d for d in axes["dataset"] if d not in sizes]
    if missing:
        raise KeyError(f"configs/experiment/table1.yaml: grid_sizes has no entry for {missing}")
    datasets = tuple((str(sizes[d]["label"]), int(sizes[d]["images"]), int(sizes[d]["classes"]))
                     for d in axes["dataset"])
    methods = tuple(sorted(axes["method"], key=lambda m: (attribution.method_info(m).order, m)))
    models = tuple(axes["model"])
    sizes = tuple(int(model_config(m).get("input_size") or 256) for m in models)
    return Grid(methods, models, datasets, max(sizes), sizes)


def default_costs(vae=None, size: int | None = None) -> dict[tuple[str, int], dict[str, float]]:
    """cost(size, size) (default: the grid's largest size, 256) of every table-1 method with its paper defaults,
    per dataset class count (AGI depends on it)."""
    import attribution

    grid = table1_grid()
    size = size or grid.size
    if vae is None:
        vae = build_vae("small", torch.device("cpu"))  # cost() does not depend on the VAE; any adapter builds
    out = {}
    for name in grid.methods:
        try:
            factory = attribution.METHODS.get(name)
        except KeyError:
            continue
        for _, _, n_cls in grid.datasets:
            kw: dict[str, Any] = {}
            params = _params(factory)
            if attribution.method_info(name).needs_vae or "vae" in params:
                kw["vae"] = vae
            if "num_classes" in params:
                kw["num_classes"] = n_cls
            try:
                out[(name, n_cls)] = attribution.build_method(name, **kw).cost(size, size)
            except Exception:  # noqa: BLE001
                pass
    return out


def table1_estimate(rows, cfg_key, costs) -> tuple[str, float | None]:
    """Markdown of the table-1 grid estimate from one configuration's rows, and the total hours."""
    device, model, size, batch, n_steps, autocast, cl = cfg_key
    size = int(size)
    grid = table1_grid()
    by = {r["name"]: r for r in rows if _in_config(r, cfg_key) and r.get("status") == "ok"}
    base_t = calibration_times(rows, device, model, size, autocast, cl)
    vae_run = _vae_times(rows, device, size, autocast, cl)
    vae_256 = _vae_times(rows, device, grid.size, autocast, cl)
    px = (grid.size / size) ** 2
    lines, assumptions = [], []
    per_model_t = {}
    for m in grid.models:
        s_m = grid.size_of(m)  # each model at its own input size (the ViT at 224)
        t = calibration_times(rows, device, m, s_m, autocast, cl)
        if "classifier_fb" in t and "classifier_f" in t:
            per_model_t[m] = (t, f"measured ({m}, {s_m}x{s_m})")
        elif base_t:
            scale = (s_m / size) ** 2
            per_model_t[m] = ({k: v * scale for k, v in base_t.items() if k.startswith("classifier")},
                              f"assumed = {model} at {size}x{size}" + (f" x {scale:.1f} (pixels)" if scale != 1
                                                                       else ""))
    if vae_256:
        vt, vnote = vae_256, f"measured at {grid.size}x{grid.size}"
    else:
        vt = {k: v * px for k, v in vae_run.items()}
        vnote = f"measured at {size}x{size}" + (f" x {px:.1f} (pixels)" if px != 1 else "")
    if not per_model_t:
        return "No calibration rows for this configuration: no estimate.\n", None

    method_rows, total_sec, missing = [], 0.0, []
    diff = by.get("diffid")
    diff_ratio = _num(diff.get("ratio_to_bound")) if diff else None
    diff_f = _num(diff.get("f_per_image")) if diff else None
    for name in grid.methods:
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
        for m in grid.models:
            if m not in per_model_t:
                cells.append("")
                continue
            t = dict(per_model_t[m][0])
            t.update(vt)
            sec_m = 0.0
            for _, n_img, n_cls in grid.datasets:
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
            cells.append(sec_m / grid.images)
            method_sec += sec_m
        cells.append(method_sec / 3600)
        total_sec += method_sec
        method_rows.append(cells)
    hours = total_sec / 3600
    unit = "GPU-hours" if device.startswith("cuda") else "CPU-hours"
    lines.append(f"## Configuration: {model} {size}x{size}, batch {batch}, n_steps {n_steps} ({device}, "
                 f"autocast {autocast}, channels_last {cl})\n")
    lines.append(f"**Estimated {unit} for the whole table-1 grid: {hours:.2f}** "
                 f"({len(grid.datasets)} datasets x {len(grid.models)} models x {len(method_rows)} methods, "
                 f"{grid.images:,} images per (model, method), "
                 f"each scored by DiffID).\n")
    lines.append(_md_table(["method", *(f"{m} s/image (incl. DiffID)" for m in grid.models), unit], method_rows))
    lines.append("")
    lines.append("How it is extrapolated:\n")
    lines.append(f"- per method: measured ratio to the lower bound ({model}, {size}x{size}, batch {batch}, "
                 f"n_steps {n_steps}) x the lower bound of the paper defaults (n_steps 200, Guided IG fraction 0.1, "
                 f"MA-GIG 0.05, ...) at {grid.size}x{grid.size}: documented cost(256, 256) rows x per-row "
                 f"times. Rows of data-dependent methods (AGI, SAMP, MIG) = counted rows x cost(defaults) / "
                 f"cost(measured config), i.e. the same share of their upper bound as measured (random weights: "
                 f"treat SAMP/AGI/MIG as rough).")
    for m, (_, note) in per_model_t.items():
        lines.append(f"- classifier per-row times of {m}: {note}.")
    lines.append(f"- VAE per-row times: {vnote} (VAE of the run, see the `cal.decoder*` rows).")
    lines.append(f"- DiffID: {diff_f:.0f} forward rows per image x per-row time x its measured ratio to the bound "
                 f"({_fmt(diff_ratio)})." if diff_f else "- DiffID: not measured in this configuration (not counted).")
    lines.append("- Images: " + ", ".join(f"{label} {n}" for label, n, _ in grid.datasets) + "; AGI's targets per "
                 "dataset (" + "/".join(str(c) for _, _, c in grid.datasets) + " classes).")
    if missing:
        lines.append(f"- Not measured in this configuration, not counted: {', '.join(missing)}.")
    lines.append("\n(The goals these hours are checked against are in the speed report, `<device>.md`.)")
    del assumptions
    return "\n".join(lines) + "\n", hours
