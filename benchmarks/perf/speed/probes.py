"""Device helpers: synchronisation, peak memory, timing, the machine's load."""
from __future__ import annotations

import gc
import math
import os
import re
import resource
import time

import torch


def device_tag(device: torch.device) -> str:
    if device.type != "cuda":
        return "cpu"
    name = torch.cuda.get_device_name(device)
    return "cuda-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def make_sync(device: torch.device):
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def _proc_status_kb(field_name: str) -> int | None:
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
