"""The lower bound: seconds per classifier / VAE row at the best chunk size, and the bound of a method's rows."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

import torch

from attribution.engine.chunking import is_oom

from .builders import STAND_IN_MODEL, normalize, smooth_images
from .probes import make_sync


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
                         log=print, model_name: str = STAND_IN_MODEL) -> dict[str, tuple[float, int, dict[int, float]]]:
    """Best seconds per row of the classifier: {"fb": (sec, chunk, {chunk: sec}), "f": ...}."""
    res = {"fb": {}, "f": {}}
    for c in chunks:
        x = normalize(smooth_images(c, size, seed=123), model_name).to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        t = torch.randint(0, num_classes, (c,), generator=torch.Generator().manual_seed(0)).to(device)

        def fb(x=x, t=t):
            with torch.enable_grad():
                xr = x.detach().requires_grad_(True)
                with _autocast_ctx(device, autocast):
                    logits = model(xr)
                p = torch.softmax(logits.float(), -1).gather(1, t.view(-1, 1)).sum()
                torch.autograd.grad(p, xr)

        def f(x=x, t=t):
            with torch.no_grad(), _autocast_ctx(device, autocast):
                torch.softmax(model(x).float(), -1).gather(1, t.view(-1, 1))

        if not _time_chunk(res, {"fb": fb, "f": f}, c, device, min_sec, log, "chunk"):
            break
    return _best(res)


def calibrate_vae(vae, size: int, device: torch.device, chunks: Sequence[int], min_sec: float,
                  autocast: str = "none", log=print, model_name: str = STAND_IN_MODEL
                  ) -> dict[str, tuple[float, int, dict[int, float]]]:
    """Best seconds per row of the decoder without graph ("decoder_f"), decoder forward+backward to z
    ("decoder_fb") and encoder ("encoder")."""
    pix = normalize(smooth_images(1, size, seed=5), model_name).to(device)
    z1 = vae.encode(pix)
    res = {"decoder_f": {}, "decoder_fb": {}, "encoder": {}}
    for c in chunks:
        z = z1.expand(c, *z1.shape[1:]).contiguous()
        x = pix.expand(c, -1, -1, -1).contiguous()

        def dec_f(z=z):
            with torch.no_grad(), _autocast_ctx(device, autocast):
                vae.decode(z)

        def dec_fb(z=z):
            with torch.enable_grad():
                zr = z.detach().requires_grad_(True)
                with _autocast_ctx(device, autocast):
                    out = vae.decode(zr)
                torch.autograd.grad(out.float().sum(), zr)

        def enc(x=x):
            with _autocast_ctx(device, autocast):
                vae.encode(x)

        if not _time_chunk(res, {"decoder_f": dec_f, "decoder_fb": dec_fb, "encoder": enc}, c, device, min_sec,
                           log, "VAE chunk"):
            break
    return _best(res)


def lower_bound(rows: dict[str, float], t: dict[str, float]) -> float | None:
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
