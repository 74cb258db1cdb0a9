"""The same work done by other implementations: captum, PAIR saliency (methods and PIC), Quantus."""
from __future__ import annotations

import contextlib
import inspect
from typing import Any

import numpy as np
import torch

from attribution.engine.chunking import default_max_batch

from .cli import Config


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


def external_runs(name: str, method, model, cfg: Config, device) -> list[tuple[str, Any]]:
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
