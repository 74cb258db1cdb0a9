"""A classifier that returns NaN or Inf for some inputs, and attributions that are zero everywhere: the rows are
flagged with a status and a note, their metrics are NaN, the table counts them, and the run goes on."""
from __future__ import annotations

import math

import numpy as np
import torch
from fault_helpers import add_configs, base_overrides, run_inproc, write_conf
from torch import nn

import attribution
from benchmarks.io.store import load_store
from benchmarks.report.table import status_counts, summarize

IDS = [f"im/{i:02d}.png" for i in range(8)]
EXPECTED = {
    "im/00.png": "ok",
    "im/01.png": "skipped",            # unreadable
    "im/02.png": "bad_model_output",   # NaN logits on the clean image
    "im/03.png": "bad_model_output",   # +Inf logits on the clean image
    "im/04.png": "zero_attribution",   # the image is IG's black baseline
    "im/05.png": "bad_model_output",   # finite on the image, NaN half-way along IG's path
    "im/06.png": "ok",
    "im/07.png": "ok",
}
METRIC_COLS = ["completeness.completeness_error", "diffid.diffid", "diffid.insertion", "diffid.deletion"]


def _run(tmp_path, *extra):
    conf = write_conf(tmp_path)
    add_configs(conf, {
        "dataset/marked.yaml": {"_target_": "fault_helpers.MarkedDataset", "name": "tiny", "n": 8,
                                "unreadable": ["im/01.png"], "white": ["im/02.png"], "inf": ["im/03.png"],
                                "black": ["im/04.png"], "path_nan": ["im/05.png"]},
        "model/faulty.yaml": {"_target_": "fault_helpers.FaultyClassifier"}})
    out = tmp_path / "out"
    ov = [o for o in base_overrides(conf, out, "batch_size=4", "+metrics.diffid={ratios: [0.25, 0.5, 0.75]}", *extra)
          if o not in ("dataset=tiny", "model=tiny")]
    res = run_inproc([*ov, "dataset=marked", "model=faulty"])
    return res, load_store(out).set_index("image_id")


def test_nan_inf_and_zero_rows_are_flagged_scored_nan_and_counted(tmp_path):
    res, df = _run(tmp_path)
    assert res.evaluated == 8  # the run went on past every bad image, in the same batches as good ones
    assert df["status"].to_dict() == EXPECTED
    assert df.loc["im/02.png", "note"] == df.loc["im/03.png", "note"] == "the classifier returned NaN/Inf logits"
    assert "NaN/Inf" in df.loc["im/05.png", "note"] and "attribution" in df.loc["im/05.png", "note"]
    assert "zero" in df.loc["im/04.png", "note"]
    ok = df[df.status == "ok"]
    bad = df[df.status != "ok"]
    assert np.isfinite(ok[METRIC_COLS].to_numpy(float)).all()
    assert bad[METRIC_COLS].isna().all().all()
    assert ok["diffid.insertion_curve"].map(len).eq(3).all()

    # the table: means over ok rows only, flagged rows counted per status
    flat = df.reset_index()
    for metric_set in ("diffid", "completeness"):
        s = summarize(flat, metric_set)
        assert (s["n_ok"] == 3).all() and (s["n_flagged"] == 5).all() and (s["n"] == 3).all()
        assert np.isfinite(s["mean"]).all()
    counts = status_counts(flat).set_index("status")["count"].to_dict()
    assert counts == {"bad_model_output": 3, "skipped": 1, "zero_attribution": 1}
    mean = summarize(flat, "diffid").set_index("column").loc["diffid.diffid", "mean"]
    assert math.isclose(mean, ok["diffid.diffid"].mean(), rel_tol=1e-9)


def test_flagged_rows_stay_flagged_on_resume(tmp_path):
    """A rerun (the attributions now come from the cache, NaN map included) changes nothing."""
    _run(tmp_path)
    res, again = _run(tmp_path)
    assert res.evaluated == 0 and res.skipped_done == 8
    assert again["status"].to_dict() == EXPECTED
    for p in (tmp_path / "out" / "store").glob("*.parquet"):
        p.unlink()
    res, third = _run(tmp_path)
    assert res.evaluated == 8 and third["status"].to_dict() == EXPECTED


class _NaNWhenPerturbed(nn.Module):
    """Finite logits on the given clean images only; NaN on every other input (perturbed, path or baseline)."""

    def __init__(self, clean):
        super().__init__()
        self.clean = clean

    def forward(self, x):
        m = x.mean((1, 2, 3))
        out = torch.stack([m, -m, x[:, 0].mean((1, 2))], 1)
        known = (x[:, None] == self.clean[None]).flatten(2).all(-1).any(1)
        return out * torch.where(known, 1.0, float("nan"))[:, None]


def test_nan_on_perturbed_inputs_gives_nan_metrics_not_a_guess():
    """DiffID's hard score used to take argmax of NaN logits (class 0) as the prediction, so a model that is NaN on
    every perturbed image scored plausible numbers; a NaN/Inf output now scores NaN in every metric."""
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    attr, target = torch.randn_like(x), torch.tensor([0, 2])
    model = _NaNWhenPerturbed(x)
    assert torch.isfinite(model(x)).all()
    for name, opts in [("diffid", {}), ("diffid", {"score": "soft"}), ("insertion_deletion", {}),
                       ("completeness", {})]:
        vals = attribution.build_metric(name, **opts)(model, x, attr, target)
        for key, v in vals.items():
            if key == "f_x":  # the clean images' own score
                assert torch.isfinite(v).all()
            elif key.endswith("_curve"):
                assert torch.isnan(v).any(1).all(), (name, key)
            else:
                assert torch.isnan(v).all(), (name, opts, key, v)


def test_nan_only_on_the_metrics_perturbed_inputs_flags_the_row(tmp_path):
    """A random map never calls the model, so only DiffID's perturbed images can reach the faulty net's NaN inputs
    (equal corner pixels near 0: DiffID's scalar fill writes them). Such rows used to stay "ok" with NaN metrics; now
    every row with a NaN DiffID is flagged, and every row left ok has finite metrics. Two ratios: a map then fills
    both channels of the corner pixel on some images (NaN) and not on others (ok), with the per-image random maps."""
    conf = write_conf(tmp_path)
    add_configs(conf, {
        "dataset/marked.yaml": {"_target_": "fault_helpers.MarkedDataset", "name": "tiny", "n": 8,
                                "path_nan": ["im/05.png"]},
        "model/faulty.yaml": {"_target_": "fault_helpers.FaultyClassifier"},
        "method/t_random.yaml": {"name": "random", "seed": 0}})
    out = tmp_path / "out"
    ov = [o for o in base_overrides(conf, out, "batch_size=4", "+metrics.diffid={ratios: [0.25, 0.5]}")
          if o not in ("dataset=tiny", "model=tiny", "method=t_ig")]
    run_inproc([*ov, "dataset=marked", "model=faulty", "method=t_random"])
    df = load_store(out).set_index("image_id")
    nan = df["diffid.diffid"].isna()
    assert nan.sum() >= 1  # the setting does reach the NaN inputs
    assert (df.loc[nan, "status"] == "bad_model_output").all()
    assert df.loc[nan, "note"].str.contains("metric 'diffid' evaluates").all()
    ok = df[df.status == "ok"]
    assert len(ok) >= 1 and np.isfinite(ok[["diffid.diffid", "completeness.completeness_error"]].to_numpy(float)).all()
