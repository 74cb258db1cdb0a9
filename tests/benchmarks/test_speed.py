"""Smoke test of the speed benchmark (benchmarks/speed.py) and the authors-style loops: no timing assertions."""
import csv
import json

import pytest
import torch

import attribution
from benchmarks import reference as rl
from benchmarks.perf import speed

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
ARGS = ["--model", "tiny", "--image-size", "16", "--batch", "2", "--n-steps", "3", "--methods",
        "ig,guided_ig,grad_input,no_such_method", "--metrics", "diffid", "--externals", "captum", "--device", "cpu",
        "--bound-chunks", "1,2", "--calib-min-sec", "0.005", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("speed")
    paths = speed.main(ARGS + ["--out", str(out)])
    with open(paths["csv"], newline="") as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames, list(reader)
    return paths, header, rows


def _row(rows, kind, name):
    hits = [r for r in rows if r["kind"] == kind and r["name"] == name]
    assert len(hits) == 1, (kind, name, [(r["kind"], r["name"]) for r in rows])
    return hits[0]


def test_csv_has_the_columns(run):
    paths, header, rows = run
    assert paths["csv"].name == "cpu.csv"
    assert header == speed.COLUMNS
    for col in ("name", "device", "model", "image_size", "batch", "n_steps", "sec_per_image", "fb_per_image",
                "f_per_image", "decoder_f", "decoder_b", "peak_mem_mb", "lower_bound_sec", "ratio_to_bound",
                "loop_sec_per_image", "speedup_vs_loop", "external_sec_per_image", "speedup_vs_external", "notes"):
        assert col in header


def test_pass_counts_equal_cost(run):
    _, _, rows = run
    for name in ("ig", "guided_ig", "grad_input"):
        r = _row(rows, "method", name)
        assert r["status"] == "ok", r["notes"]
        cost = json.loads(r["cost"])
        assert float(r["fb_per_image"]) == cost["fb"], name
        assert float(r["f_per_image"]) == cost.get("f", 0), name
        assert float(r["sec_per_image"]) > 0 and float(r["lower_bound_sec"]) > 0
        assert r["model"] == "tiny" and r["image_size"] == "16" and r["batch"] == "2" and r["n_steps"] == "3"


def test_unknown_method_is_skipped_with_a_note(run):
    _, _, rows = run
    r = _row(rows, "method", "no_such_method")
    assert r["status"] == "skipped" and "no_such_method" in r["notes"]


def test_loops_captum_and_metric_rows(run):
    _, _, rows = run
    ig = _row(rows, "method", "ig")
    assert ig["loop_mode"] == "real" and float(ig["loop_sec_per_image"]) > 0 and float(ig["speedup_vs_loop"]) > 0
    assert "loop vs ours rel. diff" in ig["notes"]
    assert ig["external"] == "captum.IntegratedGradients"
    cap = _row(rows, "external", "captum.IntegratedGradients")
    assert float(cap["fb_per_image"]) == json.loads(ig["cost"])["fb"]  # the same rows as ours
    diff = _row(rows, "metric", "diffid")
    assert diff["status"] == "ok" and float(diff["f_per_image"]) == 18 and diff["levels"] == "18"
    cal = {r["name"]: r for r in rows if r["kind"] == "calibration"}
    assert {"cal.classifier_fb", "cal.classifier_f"} <= set(cal)
    assert "best of two sweeps" in cal["cal.classifier_fb"]["notes"]  # re-measured at the end of the run


def test_markdown_goals_and_estimate(run):
    paths, _, _ = run
    md = paths["md"].read_text()
    assert "### Methods" in md and "### Goals" in md and "IG within 1.25x of the lower bound" in md
    assert any(v in md for v in ("| PASS |", "| FAIL |"))
    est = paths["estimate"].read_text()
    assert "Estimated CPU-hours for the whole table-1 grid" in est and "extrapolated" in est


def test_rerun_merges_rows(run, tmp_path):
    paths, _, rows = run
    other = [dict(r, model="other") for r in rows if r["kind"] == "method"]
    merged = speed.merge_rows(rows, other)
    assert len(merged) == len(rows) + len(other)
    assert len(speed.merge_rows(merged, other)) == len(merged)  # same key replaces


def test_lower_bound_formula():
    t = {"classifier_fb": 2.0, "classifier_f": 0.5, "decoder_f": 3.0, "decoder_fb": 7.0, "encoder": 1.0}
    rows = {"fb": 10, "f": 2, "b": 4, "decoder_f": 5, "decoder_b": 3, "encoder": 2}
    assert speed.lower_bound(rows, t) == pytest.approx(10 * 2 + 2 * 0.5 + 4 * 1.5 + 3 * 7 + 2 * 3 + 2 * 1)
    assert speed.lower_bound({"fb": 1, "decoder_f": 1}, {"classifier_fb": 1.0}) is None


@pytest.fixture
def tiny():
    import timm

    torch.manual_seed(0)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=10).eval().requires_grad_(False)
    x = speed.normalize(speed.smooth_images(2, 16))
    return model, x, model(x).argmax(1)


def test_ig_loop_matches_the_library(tiny):
    model, x, y = tiny
    method = attribution.build_method("ig", n_steps=5, mean=MEAN, std=STD)
    run = rl.loop_ig(model, x, y, method)
    assert run.mode == "real" and run.attr.shape == x.shape
    torch.testing.assert_close(run.attr, method(model, x, y), rtol=1e-4, atol=1e-7)


def test_guided_ig_loop_does_2n_minus_1_passes(tiny):
    model, x, y = tiny
    method = attribution.build_method("guided_ig", n_steps=4, mean=MEAN, std=STD)
    with attribution.PassCounter(model) as pc:
        run = rl.loop_guided_ig(model, x, y, method)
    assert pc.fb == 2 * (2 * 4 - 1)
    torch.testing.assert_close(run.attr, method(model, x, y), rtol=1e-3, atol=1e-6)


def test_bad_arguments_fail_before_work():
    with pytest.raises(SystemExit):
        speed.parse_args(["--externals", "captum,nope"])
    with pytest.raises(SystemExit):
        speed.parse_args(["--n-steps", "1", "--device", "cpu"])
    with pytest.raises(SystemExit):
        speed.parse_args(["--set", "ig.n_steps", "--device", "cpu"])
