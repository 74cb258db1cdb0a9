"""Shared bits of the fault tests. The runner's tiny stand-ins (a random-image dataset, a one-conv
classifier, the Hydra search path that names them) live in ``tests/benchmarks/test_run.py``; they are imported
from there, not copied."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
BENCH_TESTS = HERE.parent / "benchmarks"
if str(BENCH_TESTS) not in sys.path:
    sys.path.insert(0, str(BENCH_TESTS))

from test_run import ROOT, TinyClassifier, TinyDataset, base_overrides, cli, compose, run_inproc, write_conf  # noqa: F401,E402

#: columns that legitimately differ between two runs of one config (timings, write stamps, the checkout state)
RUN_ONLY = ["seconds", "written_at", "git_commit"]


def child_env() -> dict[str, str]:
    """Environment of a ``python -m benchmarks.run`` child that can import the stand-ins of both test folders and
    uses as many torch threads as this process (so its rows, ``device`` included, equal an in-process run's)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(BENCH_TESTS), str(ROOT)]),
            "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": str(torch.get_num_threads())}


def comparable(df: pd.DataFrame) -> pd.DataFrame:
    """Store rows without the run-only columns, in image order: equal for two runs of the same config."""
    out = df.drop(columns=[c for c in RUN_ONLY if c in df.columns])
    return out.sort_values(["method", "image_id"], kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------------------------- faulty models

class OOMAbove(nn.Module):
    """Wraps a model; a forward of more than ``limit`` rows runs out of memory.

    ``kind="cuda"``: raises ``torch.OutOfMemoryError`` as CUDA's caching allocator does (tensors stay on the CPU;
    tests make the chunking treat the CPU like CUDA). ``kind="cpu"``: a real failed CPU allocation (1 PiB, more
    than any address space, so it fails at once and touches no memory). ``rows`` records every attempted forward.
    """

    def __init__(self, inner: nn.Module, limit: int, kind: str = "cuda"):
        super().__init__()
        self.inner, self.limit, self.kind, self.rows = inner, limit, kind, []

    def forward(self, x):
        self.rows.append(x.shape[0])
        if x.shape[0] > self.limit:
            if self.kind == "cuda":
                raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {x.shape[0]} rows")
            torch.empty(1 << 50, dtype=torch.uint8)
        return self.inner(x)


class OOMClassifier(TinyClassifier):
    """The runner's stand-in classifier behind :class:`OOMAbove`."""

    def __init__(self, limit=6, kind="cuda", **kw):
        super().__init__(**kw)
        self.model = OOMAbove(self.model, limit, kind).eval()


class _Faulty(nn.Module):
    """The stand-in net, with non-finite logits where a :class:`MarkedDataset` marker says so (normalised input,
    mean = std = 0.5): +Inf on the clean ``inf`` images (corner pixels of channels 0/1 = +1/-1), NaN at the points
    half-way along a path to a ``path_nan`` image (corner pixels of channels 0/1 equal and in (-0.2, 0.2); the
    clean image has 0.5 there, so only a path or a perturbation reaches them)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        out = self.inner(x)
        c0, c1 = x[:, 0, 0, 0], x[:, 1, 0, 0]
        inf = (c0 == 1.0) & (c1 == -1.0)
        nan = (c0 == c1) & (c0.abs() < 0.2)
        out = torch.where(inf[:, None], torch.full_like(out, float("inf")), out)
        # NaN through the arithmetic, as a real overflow gives it: the gradient there is NaN too (a torch.where
        # with a NaN constant would give NaN logits but a zero gradient)
        return out * torch.where(nan, float("nan"), 1.0)[:, None]


class FaultyClassifier(TinyClassifier):
    """The runner's stand-in classifier with NaN / Inf outputs for marked inputs (see :class:`_Faulty`)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.model = _Faulty(self.model).eval()


class MarkedDataset(TinyDataset):
    """``TinyDataset`` plus marked images: ``inf`` ids (the faulty classifier returns +Inf on them) and ``path_nan``
    ids (it returns NaN half-way along the path to them)."""

    def __init__(self, inf=(), path_nan=(), **kw):
        super().__init__(**kw)
        for i in inf:
            self._images[i][0, 0, 0], self._images[i][1, 0, 0] = 1.0, 0.0
        for i in path_nan:
            self._images[i][0, 0, 0], self._images[i][1, 0, 0] = 0.75, 0.75


def add_configs(conf, files: dict) -> None:
    """Write extra Hydra configs (``{"model/x.yaml": {...}}``) into a search path made by ``write_conf``."""
    import yaml

    for rel, data in files.items():
        p = conf / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(yaml.safe_dump(data))
