"""Precision study: how far reduced-precision autocast moves each method's attributions and scores from float32.

Faster runs on a GPU may want ``autocast: bf16``; this measures what it costs in correctness,
on real weights and real images (the embedded suites of ``configs/experiment/demo.yaml``: photos with the ImageNet
EfficientNet-Lite0, MNIST with the trained CNN and VAE for the latent methods). Per method and precision p, against
the float32 attribution A of the same images and settings (means over images):

- ``rel_l2`` = ||A_p - A|| / ||A||;
- ``spearman`` = rank correlation of |A_p| and |A| over all C x H x W elements (what DiffID ranks);
- ``top10`` = overlap of the 10% largest |A_p| and |A| elements (|intersection| / k);
- ``completeness`` = mean |sum A_p - (f(x) - f(x'))| / |f(x) - f(x')| of A_p (float32 row: of A);
- ``diffid`` and ``d_diffid`` = mean DiffID of A_p scored in float32, and mean |DiffID(A_p) - DiffID(A)| per image;
- ``seconds`` per image of the attribution call on this device (indicative: one call after a one-image warm-up).

Precision ``fp32_b1`` is the control: float32 with one row per chunk, i.e. the same arithmetic summed in another
order. Where it already moves a method's map, the method amplifies rounding (a guided path that ranks gradients
takes another route), and the reduced-precision rows measure that amplification as much as the precision.

    python -m benchmarks.perf.precision                     # CPU: both suites, bf16/fp16/fp32_b1
    python -m benchmarks.perf.precision --device cuda --precisions bf16,fp16,fp32_b1
    python -m benchmarks.perf.precision --suites photos --methods ig,guided_ig --n-steps 64

Writes ``results/precision/<device>.csv`` and ``.md`` (rows of the same suite/method/precision/steps replaced).
"""
from __future__ import annotations

import argparse
import atexit
import functools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

SETTINGS = Path(__file__).resolve().parents[2] / "configs" / "perf" / "precision.yaml"
KEY = ["device", "suite", "method", "precision", "n_steps", "images"]


def suite_methods(suite: str) -> list[str]:
    """The methods the study compares on ``suite`` by default (``configs/perf/precision.yaml``)."""
    import yaml

    return list((yaml.safe_load(SETTINGS.read_text()).get("methods") or {}).get(suite) or ["ig"])


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-row Spearman correlation of [B, N] tensors (ranks by a stable sort; ties broken by index)."""
    def ranks(t):
        r = torch.empty_like(t)
        r.scatter_(1, t.argsort(dim=1, stable=True), torch.arange(t.shape[1], dtype=t.dtype).expand_as(t).clone())
        return r - r.mean(1, keepdim=True)

    ra, rb = ranks(a.double()), ranks(b.double())
    return (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1))


def top_overlap(a: torch.Tensor, b: torch.Tensor, frac: float = 0.1) -> torch.Tensor:
    """Per-row share of the ``frac`` largest entries of a that are among the ``frac`` largest of b."""
    k = max(1, int(a.shape[1] * frac))
    ia, ib = a.topk(k, 1).indices, b.topk(k, 1).indices
    hit = torch.zeros_like(a, dtype=torch.bool).scatter_(1, ia, True)
    return hit.gather(1, ib).double().mean(1)


def compare(ref: torch.Tensor, other: torch.Tensor) -> dict:
    """rel_l2, spearman and top10 of ``other`` against ``ref`` (both [B, C, H, W]), means over images."""
    r, o = ref.flatten(1).double(), other.flatten(1).double()
    rel = (o - r).norm(dim=1) / r.norm(dim=1).clamp_min(1e-30)
    return {"rel_l2": float(rel.mean()), "spearman": float(spearman(r.abs(), o.abs()).mean()),
            "top10": float(top_overlap(r.abs(), o.abs()).mean())}


def suite_overrides(suite: str, device: str) -> list[str]:
    """The runner overrides of one suite of ``configs/experiment/demo.yaml`` (without a method)."""
    suites = compose_config(["experiment=demo"])["suites"]
    if suite not in suites:
        raise ValueError(f"unknown suite {suite!r}: choose from {sorted(suites)} (configs/experiment/demo.yaml)")
    return ["experiment=demo", *suites[suite], f"device={device}", f"out_dir={_scratch_dir()}"]


@functools.cache
def _scratch_dir() -> Path:
    """A folder of this process for what the runner writes (the manifest), removed at exit: a fixed folder would
    keep the manifest of an earlier suite setting, which the runner refuses to mix with another selection."""
    path = Path(tempfile.mkdtemp(prefix="attribution-precision-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def compose_config(overrides: list[str]) -> dict:
    from ..run import compose_config as compose

    return compose(overrides, job_name="precision")


def load_suite(overrides: list[str]):
    """(setup with the suite's dataset and classifier, its config, images [B,C,H,W] normalised on the device,
    labels [B]) for the suite's ``overrides``; the first ``n`` images are taken by the caller."""
    from attribution.engine import Normalizer

    from ..run import build, plan

    ov = [*overrides, "method=ig"]
    cfg = compose_config(ov)
    setup = build(plan(cfg, ov))
    samples = [setup.dataset[k] for k in range(len(setup.dataset.ids))]
    samples = [s for s in samples if s.image is not None]
    norm = Normalizer(setup.classifier.mean, setup.classifier.std)
    x = norm.normalize(torch.stack([s.image.float() for s in samples]).to(setup.device))
    y = torch.tensor([int(s.label) for s in samples], device=setup.device)
    return setup, cfg, x, y


def method_options(overrides: list[str], name: str, n_steps) -> dict:
    """Method ``name``'s keywords as the suite runs it (configs/method/<name>.yaml + the experiment's and the
    suite's method_settings), float32; ``n_steps`` replaces the steps where given."""
    from ..run import method_config

    opts = method_config(compose_config([*overrides, f"method={name}"]))
    for key in ("name", "autocast"):
        opts.pop(key, None)
    if n_steps is not None and "n_steps" in opts:
        opts["n_steps"] = n_steps
    return opts


PRECISIONS = ("bf16", "fp16", "fp32_b1")


def variant(kw: dict, precision: str) -> dict:
    """The method's keywords for one row: ``fp32`` (the reference), ``bf16``/``fp16`` (autocast), or ``fp32_b1``:
    float32 with one row per chunk (``max_batch=1``, ``vae_batch=1``) - the same arithmetic summed in another
    order, the floor of what any change of batch size, hardware or library does to the attribution."""
    if precision == "fp32_b1":
        out = {**kw, "autocast": False, "max_batch": 1}
        if "vae" in kw:
            out["vae_batch"] = 1
        return out
    return {**kw, "autocast": False if precision == "fp32" else precision}


def run_suite(suite, methods, precisions, device, n_images, n_steps, log=print, figure: Path | None = None,
              figure_images: int = 2) -> list[dict]:
    """Rows of the study for one suite; ``figure``: also save there an image x (method, precision) grid of the
    maps of the first ``figure_images`` images (how far the maps move, at a glance)."""
    import attribution
    from attribution.engine.integrate import completeness_error

    from ..run import resolve_embedded
    from ..run.planning import _build
    from .speed import device_tag

    ov = suite_overrides(suite, device)
    setup, cfg, x, y = load_suite(ov)
    x, y = x[:n_images], y[:n_images]
    vae = _build("vae", resolve_embedded(cfg["vae"])).to(setup.device) if cfg.get("vae") else None
    model = setup.classifier.model
    extra = {"mean": tuple(setup.classifier.mean), "std": tuple(setup.classifier.std)}
    diffid = attribution.build_metric("diffid")
    rows, maps = [], {}
    for name in methods:
        kw = {**method_options(ov, name, n_steps), **extra}
        if attribution.method_info(name).needs_vae:
            if vae is None:
                log(f"{suite}: {name} needs a VAE; the suite has none (skipped)")
                continue
            kw["vae"] = vae
        ref = None
        for p in ["fp32", *precisions]:
            if p != "fp32" and ref is None:
                break  # no float32 reference to compare with
            method = attribution.build_method(name, **variant(kw, p))
            try:  # warm-up on one image (kernel selection, lazy initialisation) so that seconds compare
                method.attribute(model, x[:1], y[:1])
            except (RuntimeError, NotImplementedError):
                pass  # reported by the timed call below
            torch.manual_seed(0)
            if x.is_cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            try:
                out = method.attribute(model, x, y)
            except (RuntimeError, NotImplementedError) as err:  # e.g. an op without a kernel in this precision
                log(f"{suite}/{name}/{p}: failed: {str(err).splitlines()[0][:120]}")
                continue
            if x.is_cuda:
                torch.cuda.synchronize()
            sec = (time.perf_counter() - t0) / len(x)
            scores = diffid(model, x, out.attr, y)
            row = {"device": device_tag(x.device), "suite": suite, "method": name, "precision": p,
                   "n_steps": kw.get("n_steps", ""), "images": len(x), "seconds": sec,
                   "completeness": None, "diffid": float(scores["diffid"].mean())}
            if ref is None:
                ref = (out.attr, scores["diffid"], out.f_start, out.f_end)
            if ref[2] is not None and ref[3] is not None:  # against float32's f(x) - f(x')
                row["completeness"] = float(completeness_error(out.attr, ref[3], ref[2]).abs().mean())
            if p == "fp32":
                row.update(rel_l2=0.0, spearman=1.0, top10=1.0, d_diffid=0.0)
            else:
                row.update(compare(ref[0], out.attr))
                row["d_diffid"] = float((scores["diffid"] - ref[1]).abs().mean())
            rows.append(row)
            maps[f"{name} {p}"] = out.attr[:figure_images].detach().cpu()
            log(f"{suite}/{name}/{p}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()
                                                   if isinstance(v, float)))
    if figure is not None and maps:
        from attribution.engine import Normalizer

        from ..report.figures import attribution_grid

        pixels = Normalizer(setup.classifier.mean, setup.classifier.std).denormalize(x[:figure_images]).cpu()
        attribution_grid(pixels, maps, titles=[f"image {i}" for i in range(len(pixels))], path=figure,
                         order="given")
        log(f"wrote {figure}")
    return rows


def write(rows: list[dict], out: Path, command: str) -> list[Path]:
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for dev, new in pd.DataFrame(rows).assign(command=command).groupby("device"):
        csv = out / f"{dev}.csv"
        old = pd.read_csv(csv) if csv.exists() else pd.DataFrame(columns=new.columns)
        df = pd.concat([old, new]).drop_duplicates(KEY, keep="last").reset_index(drop=True)
        df.to_csv(csv, index=False)
        lines = [f"# Attribution precision: {dev}", "",
                 "Generated by `python -m benchmarks.perf.precision` (its docstring says what each column means). "
                 "Every row is compared with the `fp32` row of the same suite, method and steps; DiffID is always "
                 "scored in float32. `fp32_b1` is the control: float32 with one row per chunk, the same arithmetic "
                 "summed in another order. Suites: `photos` = 6 real photos, ImageNet EfficientNet-Lite0, 224 px; "
                 "`mnist` = 6 real digits, the embedded CNN and VAE.", "", "Measured with:", "",
                 *(f"    {c}" for c in df["command"].fillna("").unique() if c), ""]
        cols = ["suite", "method", "n_steps", "images", "precision", "seconds", "rel_l2", "spearman", "top10",
                "completeness", "diffid", "d_diffid"]
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "---|" * len(cols))
        order = {p: i for i, p in enumerate(("fp32", "fp32_b1", "bf16", "fp16"))}
        df = df.assign(_o=df["precision"].map(order)).sort_values(["suite", "method", "n_steps", "_o"])
        for _, r in df.iterrows():
            lines.append("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
        md = out / f"{dev}.md"
        md.write_text("\n".join(lines) + "\n")
        written += [csv, md]
    return written


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if v != v else f"{v:.4g}"
    return str(v)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.perf.precision", description=__doc__.split("\n\n")[0])
    ap.add_argument("--suites", default="photos,mnist")
    ap.add_argument("--methods", default=None, help="comma list (default: per suite, configs/perf/precision.yaml)")
    ap.add_argument("--precisions", default="bf16,fp16,fp32_b1",
                    help="comma list of bf16, fp16 (autocast) and fp32_b1 (float32, one row per chunk: the noise "
                         "floor)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--n-steps", type=int, default=None, help="default: the demo's (16)")
    ap.add_argument("--out", default="results/precision")
    ap.add_argument("--figure", action="store_true",
                    help="also save maps_<suite>_<steps>steps.png: the first 2 images' maps per method and precision")
    a = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    precisions = [p for p in a.precisions.split(",") if p]
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad:
        ap.error(f"unknown precision(s) {bad}: choose from {', '.join(PRECISIONS)}")
    rows = []
    for suite in a.suites.split(","):
        methods = a.methods.split(",") if a.methods else suite_methods(suite)
        steps = a.n_steps or "demo"
        figure = Path(a.out) / f"maps_{suite}_{steps}steps.png" if a.figure else None
        rows += run_suite(suite, methods, precisions, a.device, a.images, a.n_steps, figure=figure)
    for p in write(rows, Path(a.out), "python -m benchmarks.perf.precision " + " ".join(sys.argv[1:] if argv is None
                                                                                   else argv)):
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
