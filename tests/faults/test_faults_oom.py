"""Out of memory during attribution or scoring. On CUDA the chunk of rows is halved until it fits and the work goes
on with the same numbers; on the CPU the run stops with a MemoryError that names the setting to lower.

No GPU is needed: a wrapper model runs out of memory above N rows (raising CUDA's ``torch.OutOfMemoryError``, or
failing a real CPU allocation), and for the CUDA branch the chunking is told to treat the CPU like CUDA
(``shrinks_on_oom``, the one device check of the library's one chunking loop)."""
from __future__ import annotations

import pytest
import torch
from fault_helpers import OOMAbove, TinyClassifier, add_configs, base_overrides, comparable, run_inproc, write_conf

import attribution
from attribution.engine import chunking
from benchmarks.io.store import load_store

X = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
T = torch.tensor([0, 1])


@pytest.fixture
def cuda_like(monkeypatch):
    """The chunking's CUDA branch (halve and retry) on CPU tensors; counts the cache flushes it asks for."""
    flushes = []
    monkeypatch.setattr(chunking, "shrinks_on_oom", lambda device: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: flushes.append(1))
    return flushes


def _net():
    return TinyClassifier().model


def test_attribution_chunk_halves_on_cuda_oom_and_the_result_is_unchanged(cuda_like):
    model = OOMAbove(_net(), limit=6)
    ig = attribution.build_method("ig", n_steps=16, max_batch=32)
    attr = ig(model, X, T)
    assert model.rows[:4] == [30, 16, 8, 4]  # 15 gradient points x 2 images, then halved until it fits
    assert max(r for r in model.rows[4:]) <= 6 and ig.evaluator.max_batch == 4  # remembered for the rest
    assert len(cuda_like) == 3
    expected = attribution.build_method("ig", n_steps=16, max_batch=4)(_net(), X, T)
    torch.testing.assert_close(attr, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name,opts", [("diffid", {}), ("insertion_deletion", {"step": 64}),
                                       ("completeness", {})])
def test_metric_chunk_halves_on_cuda_oom_and_the_scores_are_unchanged(cuda_like, name, opts):
    attr = torch.randn_like(X)
    model = OOMAbove(_net(), limit=3)
    metric = attribution.build_metric(name, max_batch=64, **opts)
    got = metric(model, X, attr, T)
    assert max(model.rows) > 3 and len(cuda_like) >= 1  # it did run out of memory, and went on
    model.rows.clear()
    flushes = len(cuda_like)
    again = metric(model, X, attr, T)  # the size that fits is remembered: no second out-of-memory
    assert max(model.rows) <= 3 and len(cuda_like) == flushes
    for k in got:
        torch.testing.assert_close(again[k], got[k], equal_nan=True)
    ref = attribution.build_metric(name, max_batch=64, **opts)(_net(), X, attr, T)
    assert got.keys() == ref.keys()
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=1e-5, atol=1e-6, equal_nan=True)


def test_cuda_oom_with_a_chunk_of_one_row_is_not_swallowed(cuda_like):
    with pytest.raises(torch.OutOfMemoryError):
        attribution.build_method("ig", n_steps=4, max_batch=8)(OOMAbove(_net(), limit=0), X, T)


def test_cpu_oom_stops_with_the_setting_to_lower():
    model = OOMAbove(_net(), limit=6, kind="cpu")
    with pytest.raises(MemoryError, match=r"method\.max_batch=\d+"):
        attribution.build_method("ig", n_steps=16, max_batch=32)(model, X, T)
    with pytest.raises(MemoryError, match=r"max_batch=\d+"):
        attribution.build_metric("diffid", max_batch=64)(model, X, torch.randn_like(X), T)


def _oom_conf(tmp_path, limit, kind):
    conf = write_conf(tmp_path, {"n": 4})
    add_configs(conf, {"model/oom.yaml": {"_target_": "fault_helpers.OOMClassifier", "limit": limit, "kind": kind}})
    return conf


def test_run_goes_on_after_cuda_oom_with_the_same_rows(tmp_path, cuda_like):
    conf = _oom_conf(tmp_path, limit=4, kind="cuda")
    extra = ("+method.max_batch=32", "+metrics.diffid={ratios: [0.25, 0.5, 0.75]}")
    res = run_inproc([*base_overrides(conf, tmp_path / "oom", *extra), "model=oom"])
    assert res.evaluated == 4 and len(cuda_like) > 0
    got = load_store(tmp_path / "oom")
    assert (got["status"] == "ok").all()
    run_inproc(base_overrides(conf, tmp_path / "plain", *extra))
    ref = load_store(tmp_path / "plain")
    cols = ["image_id", "status", "pred", "diffid.diffid", "diffid.insertion_curve", "passes_fb", "passes_f",
            "completeness_error", "completeness.completeness_error"]
    a, b = comparable(got)[cols], comparable(ref)[cols]
    assert a[cols[:7]].equals(b[cols[:7]])  # passes: the chunks that ran out of memory are not counted
    assert (a[cols[7:]] - b[cols[7:]]).abs().max().max() < 1e-4


@pytest.mark.parametrize("where,key", [("method", r"method\.max_batch"), ("metric", r"metrics\.diffid\.max_batch")])
def test_run_on_cpu_oom_names_the_setting_and_a_rerun_with_it_completes(tmp_path, where, key):
    conf = _oom_conf(tmp_path, limit=6, kind="cpu")
    out = tmp_path / "out"
    # the method fits (chunk 6) when it is the metric that runs out (its chunks of 64 rows), and vice versa
    method_batch = "+method.max_batch=32" if where == "method" else "+method.max_batch=6"
    ov = [*base_overrides(conf, out, method_batch, "+metrics.diffid={ratios: [0.25, 0.5, 0.75]}"), "model=oom"]
    with pytest.raises(MemoryError, match=key):
        run_inproc(ov)
    fixed = [o for o in ov if not o.startswith("+method.max_batch")] + ["+method.max_batch=6",
                                                                         "+metrics.diffid.max_batch=6"]
    res = run_inproc(fixed)
    assert res.evaluated == 4 and (load_store(out)["status"] == "ok").all()


def test_one_chunking_loop_backs_off_for_gradients_metrics_and_the_vae(cuda_like, monkeypatch):
    """The library has one chunking loop (:class:`attribution.engine.chunking.Chunker`). Make each chunker's first
    chunk of more than one row run out of memory, once: the gradient engine, a metric and the VAE passes all halve
    through it, keep the size that fits, and give the numbers of a run without the fault."""
    from helpers.models import tiny_kl

    from attribution.engine.chunking import Chunker
    from attribution.vae import VAEAdapter

    real_run = Chunker.run
    faults, raised = [], set()

    def run_with_one_oom(self, fn, n_rows, device, row_shape=None):
        def once(start, stop):
            if id(self) not in raised and stop - start > 1:
                raised.add(id(self))
                faults.append(self.setting)
                raise torch.OutOfMemoryError("CUDA out of memory (injected)")
            return fn(start, stop)

        return real_run(self, once, n_rows, device, row_shape)

    vae = VAEAdapter(tiny_kl())
    attr = torch.randn_like(X)

    def compute():
        ig = attribution.build_method("ig", n_steps=8, max_batch=8)
        metric = attribution.build_metric("diffid", max_batch=8)
        latent = attribution.build_method("eig", n_steps=4, vae=vae, vae_batch=4, max_batch=8)
        out = ig(_net(), X, T), metric(_net(), X, attr, T)["diffid"], latent(_net(), X, T)
        return out, (ig.evaluator.max_batch, metric.max_batch, latent.vae_chunker.max_batch)

    expected, sizes = compute()
    assert sizes == (8, 8, 4) and not faults
    monkeypatch.setattr(Chunker, "run", run_with_one_oom)
    got, sizes = compute()
    assert {"method.max_batch", "max_batch", "method.vae_batch"} <= set(faults)
    assert sizes == (4, 4, 2)  # each caller halved once and kept the size that fits
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
