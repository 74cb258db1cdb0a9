"""benchmarks.perf.precision: the agreement measures on hand-computed cases, and a run on the embedded MNIST suite."""
import math

import pandas as pd
import pytest
import torch

from benchmarks.perf import precision


def test_spearman_hand_cases():
    a = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    b = torch.tensor([[10.0, 20.0, 30.0, 40.0],   # same order: 1
                      [4.0, 3.0, 2.0, 1.0],       # reversed: -1
                      [2.0, 1.0, 3.0, 4.0]])      # ranks 1,0,2,3 vs 0,1,2,3: 1 - 6*2/(4*15) = 0.8
    assert precision.spearman(a, b).tolist() == pytest.approx([1.0, -1.0, 0.8])


def test_top_overlap_hand_cases():
    a = torch.tensor([[9.0, 8.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]] * 2)
    b = torch.tensor([[9.0, 0.0, 8.5, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],   # top-2 {0, 2} vs {0, 1}: 1/2
                      [5.0, 6.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]])  # {1, 0}: 1
    assert precision.top_overlap(a, b, frac=0.2).tolist() == [0.5, 1.0]


def test_variant_keywords():
    kw = {"n_steps": 8, "vae": object()}
    assert precision.variant(kw, "fp32")["autocast"] is False
    assert precision.variant(kw, "bf16")["autocast"] == "bf16"
    b1 = precision.variant(kw, "fp32_b1")
    assert b1["autocast"] is False and b1["max_batch"] == 1 and b1["vae_batch"] == 1
    assert "vae_batch" not in precision.variant({"n_steps": 8}, "fp32_b1")


def test_compare_relative_error():
    ref = torch.ones(2, 1, 2, 2)
    other = ref.clone()
    other[1, 0, 0, 0] = 3.0  # ||diff|| = 2, ||ref|| = 2 -> 1 for image 1, 0 for image 0
    out = precision.compare(ref, other)
    assert out["rel_l2"] == pytest.approx(0.5)


@pytest.fixture()
def quick_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ATTRIBUTION_CACHE", str(tmp_path_factory.getbasetemp() / "attribution-cache"))
    monkeypatch.setenv("ATTRIBUTION_EMBEDDED_BUDGET", "quick")


def test_mnist_suite_bf16_rows(quick_cache, tmp_path):
    """IG and MA-GIG on 2 embedded digits, float32 and bf16: the float32 row is the reference (0 error), the bf16
    rows are measured (not copied), completeness is against float32's f values, files are written. IG's bf16
    attribution stays close; MA-GIG's guided path may diverge (its steering ranks bf16 gradients), so only its
    measures' ranges are checked."""
    rows = precision.run_suite("mnist", ["ig", "ma_gig"], ["bf16", "fp32_b1"], "cpu", n_images=2, n_steps=4,
                               log=lambda m: None, figure=tmp_path / "maps.png")
    assert (tmp_path / "maps.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # image x (method, precision)
    got = {(r["method"], r["precision"]): r for r in rows}
    assert set(got) == {(m, p) for m in ("ig", "ma_gig") for p in ("fp32", "bf16", "fp32_b1")}
    assert got["ig", "fp32_b1"]["rel_l2"] < 1e-4  # the control: float32 in another summation order
    for m in ("ig", "ma_gig"):
        ref, low = got[m, "fp32"], got[m, "bf16"]
        assert ref["rel_l2"] == 0.0 and ref["spearman"] == 1.0 and ref["top10"] == 1.0 and ref["d_diffid"] == 0.0
        assert low["rel_l2"] > 0.0 and -1.0 <= low["spearman"] < 1.0 and 0.0 <= low["top10"] <= 1.0
        assert math.isfinite(low["completeness"]) and math.isfinite(low["d_diffid"])
        assert low["n_steps"] == 4 and low["images"] == 2
    assert got["ig", "bf16"]["rel_l2"] < 0.2 and got["ig", "bf16"]["spearman"] > 0.95
    paths = precision.write(rows, tmp_path, "test")
    df = pd.read_csv(tmp_path / "cpu.csv")
    assert len(df) == 6 and [p.name for p in paths] == ["cpu.csv", "cpu.md"]
    assert "| mnist | ma_gig | 4 | 2 | bf16 |" in (tmp_path / "cpu.md").read_text()
    precision.write(rows[:1], tmp_path, "again")  # same key: replaced, not appended
    assert len(pd.read_csv(tmp_path / "cpu.csv")) == 6
    md = (tmp_path / "cpu.md").read_text()
    assert "    test\n" in md and "    again\n" in md  # the commands that measured the rows


def test_precision_runs_write_into_a_folder_of_their_own():
    """The runner refuses to mix two selections of a dataset in one out_dir: a fixed temporary folder shared by every
    precision run would keep an earlier suite setting's manifest, so each process gets its own (removed at exit)."""
    import tempfile
    from pathlib import Path

    from benchmarks.perf import precision

    def out_dir(ov):
        return Path(next(o for o in ov if o.startswith("out_dir=")).split("=", 1)[1])

    a, b = out_dir(precision.suite_overrides("mnist", "cpu")), out_dir(precision.suite_overrides("photos", "cpu"))
    assert a == b and a.is_dir() and a != Path(tempfile.gettempdir()) / "attribution-precision"
