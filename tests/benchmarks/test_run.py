"""The runner end to end on tiny stand-ins (no downloads): rows, statuses, resume, re-scoring, shards, errors.

The stand-in dataset and classifier below are built through the runner's ``_target_`` route from config files the
tests write into a temporary Hydra search path; ``test_sweep.py`` imports them in its job processes too.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from benchmarks import run as runner
from benchmarks.io.store import load_store

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
Sample = namedtuple("Sample", "id image label note")


# --------------------------------------------------------------------------------------------------- stand-ins
class TinyDataset:
    """``n`` random 3x16x16 images; ids listed in ``unreadable`` give image None, ``white`` all-ones images (the
    stand-in classifier returns NaN on those), ``black`` all-zero images (= IG's baseline, so zero attribution)."""

    def __init__(self, n=6, size=16, classes=4, seed=0, unreadable=(), white=(), black=(), name="tiny",
                 manifest=None):
        self.name, self.num_classes = name, classes
        self.class_names = [f"c{i}" for i in range(classes)]
        all_ids = [f"im/{i:02d}.png" for i in range(n)]
        if manifest is not None:
            m = json.loads(Path(manifest).read_text()) if not isinstance(manifest, dict) else manifest
            all_ids = list(m["ids"])
        self.ids = all_ids
        g = torch.Generator().manual_seed(seed)
        self._images = {i: torch.rand(3, size, size, generator=g) for i in self.ids}
        self._labels = {i: k % classes for k, i in enumerate(self.ids)}
        self.unreadable, self.white, self.black = set(unreadable), set(white), set(black)

    def __len__(self):
        return len(self.ids)

    def manifest(self):
        return {"name": self.name, "ids": self.ids, "labels": [self._labels[i] for i in self.ids],
                "source": "tiny", "protocol": "random"}

    def __getitem__(self, k):
        i = self.ids[k]
        if i in self.unreadable:
            return Sample(i, None, self._labels[i], "cannot decode (test)")
        img = self._images[i]
        if i in self.white:
            img = torch.ones_like(img)
        if i in self.black:
            img = torch.zeros_like(img)
        return Sample(i, img, self._labels[i], None)


class _Net(nn.Module):
    def __init__(self, classes, delay):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, classes)
        self.delay = delay

    def forward(self, x):
        if self.delay:
            time.sleep(self.delay)
        h = torch.tanh(self.conv(x)).mean((2, 3))
        out = self.head(h)
        white = (x.flatten(1) > 0.999).all(1)  # all-ones pixels (1 after mean=std=0.5 normalisation)
        return torch.where(white[:, None], torch.full_like(out, float("nan")), out)


class TinyClassifier:
    def __init__(self, classes=4, delay=0.0, name="tinynet"):
        self.model = _Net(classes, delay).eval()
        self.mean, self.std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
        self.input_size, self.num_classes, self.name = 16, classes, name


# ------------------------------------------------------------------------------------------------ fixtures
def write_conf(root: Path, dataset: dict | None = None, model: dict | None = None) -> Path:
    """A Hydra search path with the stand-ins: dataset=tiny, model=tiny, method=t_ig|t_gi, metrics=t_basic."""
    import yaml

    conf = root / "conf"
    for group, data in {
        "dataset/tiny.yaml": {"_target_": "test_run.TinyDataset", "name": "tiny", "n": 6, "manifest": None,
                              **(dataset or {})},
        "model/tiny.yaml": {"_target_": "test_run.TinyClassifier", **(model or {})},
        "method/t_ig.yaml": {"name": "ig", "n_steps": 6, "baseline": "black"},
        "method/t_gi.yaml": {"name": "grad_input"},
        # the config tree's default method, for a sweep's first composition, where the repo does not have it yet
        "method/ig.yaml": {"name": "ig"},
        "metrics/t_basic.yaml": {"completeness": {}},
    }.items():
        p = conf / group
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(yaml.safe_dump(data))
    return conf


def base_overrides(conf: Path, out: Path, *extra):
    return [f"hydra.searchpath=[file://{conf}]", "dataset=tiny", "model=tiny", "method=t_ig", "metrics=t_basic",
            f"out_dir={out}", "batch_size=2", "progress=false", "write_tables=false", "device=cpu", *extra]


def compose(overrides):
    from hydra import compose as hcompose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=runner.CONFIG_DIR, version_base=None):
        return hcompose("config", overrides=list(overrides))


def run_inproc(overrides):
    return runner.run(compose(overrides), overrides=[o for o in overrides if not o.startswith("hydra.")])


def cli(args, env_extra=None, **kw):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]), "HYDRA_FULL_ERROR": "0",
           **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "benchmarks.run", *args], cwd=kw.pop("cwd", ROOT), env=env,
                          capture_output=True, text=True, check=False, **kw)


@pytest.fixture
def conf(tmp_path):
    return write_conf(tmp_path)


# -------------------------------------------------------------------------------------------------- tests
def test_rows_statuses_provenance(tmp_path):
    conf = write_conf(tmp_path, {"unreadable": ["im/01.png"], "white": ["im/02.png"], "black": ["im/03.png"]})
    out = tmp_path / "out"
    res = run_inproc(base_overrides(conf, out))
    assert res.evaluated == 6
    df = load_store(out).set_index("image_id")
    assert len(df) == 6 and df.index.is_unique
    st = df["status"].to_dict()
    assert st == {"im/00.png": "ok", "im/01.png": "skipped", "im/02.png": "bad_model_output",
                  "im/03.png": "zero_attribution", "im/04.png": "ok", "im/05.png": "ok"}
    assert df.loc["im/01.png", "note"] == "cannot decode (test)"
    ok = df[df.status == "ok"]
    assert ok["completeness.completeness_error"].notna().all()
    assert df.loc[["im/01.png", "im/02.png", "im/03.png"], "completeness.completeness_error"].isna().all()
    assert (ok["completeness_error"] >= 0).all() and (ok["seconds"] > 0).all()
    assert (ok["passes_fb"] == 5).all()  # IG with 6 points: 5 forward+backward rows per image
    assert (ok["target"] == ok["label"]).all()
    row = df.iloc[0]
    assert row["dataset"] == "tiny" and row["model"] == "tinynet" and row["method"] == "ig"
    assert row["device"].startswith("cpu") and row["seed"] == 0 and row["shard"] == "0/1"
    assert {"torch", "python"} <= set(json.loads(row["versions"]))
    assert len(row["method_hash"]) == 10 and len(row["config_hash"]) == 10 and row["git_commit"]
    [manifest] = [json.loads(p.read_text()) for p in out.glob("manifest_tiny_*.json")]
    assert manifest["ids"] == [f"im/{i:02d}.png" for i in range(6)]
    assert len(list((out / "cache").rglob("*.npz"))) == 4  # 3 ok rows + the zero map; none for skipped/NaN
    assert not list((out / "store" / "parts").glob("*.parquet"))  # folded into the shard file
    assert [p.name for p in (out / "store").glob("*.parquet")] == [
        f"tiny__tinynet__ig-{row['method_hash']}__shard0of1.parquet"]


def test_resume_skips_done_and_new_metric_rescores_from_cache(conf, tmp_path, monkeypatch):
    out = tmp_path / "out"
    run_inproc(base_overrides(conf, out))
    before = load_store(out)
    again = run_inproc(base_overrides(conf, out))
    assert again.evaluated == 0 and again.skipped_done == 6
    pd.testing.assert_frame_equal(before, load_store(out))

    from attribution.methods.ig import IntegratedGradients

    def boom(*a, **k):
        raise AssertionError("the attribution should come from the cache")

    monkeypatch.setattr(IntegratedGradients, "_attribute", boom)
    res = run_inproc(base_overrides(conf, out, "+metrics.random_pixels={metric: completeness, baseline: mean}"))
    after = load_store(out)
    assert res.rescored == 6 and len(after) == 6
    assert after["random_pixels.completeness_error"].notna().all()
    # the first metric's values and the attribution timings are kept as they were
    cols = ["image_id", "completeness.completeness_error", "seconds", "completeness_error"]
    pd.testing.assert_frame_equal(before[cols], after[cols])


def test_scores_from_cache_equal_fresh_scores(conf, tmp_path):
    out = tmp_path / "out"
    run_inproc(base_overrides(conf, out))
    fresh = load_store(out)
    for p in (out / "store").glob("*.parquet"):
        p.unlink()
    res = run_inproc(base_overrides(conf, out, "batch_size=4"))  # every attribution now comes from the cache
    assert res.evaluated == 6
    cached = load_store(out)
    for col in ("completeness.completeness_error", "completeness_error", "seconds"):
        assert cached[col].tolist() == fresh[col].tolist()


def test_shards_partition_the_images(conf, tmp_path):
    out = tmp_path / "out"
    for i in range(3):
        run_inproc(base_overrides(conf, out, f"shard={i}/3"))
    df = load_store(out)
    assert sorted(df["image_id"]) == [f"im/{i:02d}.png" for i in range(6)]
    assert df.groupby("shard").size().to_dict() == {"0/3": 2, "1/3": 2, "2/3": 2}
    # a later unsharded run finds everything done
    assert run_inproc(base_overrides(conf, out)).evaluated == 0


def test_crash_mid_run_resumes_without_loss_or_duplicates(conf, tmp_path, monkeypatch):
    out = tmp_path / "out"
    from attribution.metrics.completeness import Completeness

    calls = {"n": 0}
    orig = Completeness.compute

    def flaky(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated kill")
        return orig(self, *a, **k)

    monkeypatch.setattr(Completeness, "compute", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_inproc(base_overrides(conf, out))
    assert len(list((out / "store" / "parts").glob("*.parquet"))) == 1  # the first batch, not yet folded
    assert len(load_store(out)) == 2
    res = run_inproc(base_overrides(conf, out))
    assert res.evaluated == 4 and res.skipped_done == 2
    df = load_store(out)
    assert sorted(df["image_id"]) == [f"im/{i:02d}.png" for i in range(6)]


def test_method_settings_and_command_line_precedence():
    cfg = {"method": {"name": "ig", "n_steps": 200, "baseline": "black"},
           "method_settings": {"*": {"n_steps": 16, "fraction": 0.5}, "ig": {"baseline": "blur"}}}
    assert runner.method_config(cfg) == {"name": "ig", "n_steps": 16, "baseline": "blur"}
    assert runner.method_config(cfg, ["n_steps"]) == {"name": "ig", "n_steps": 200, "baseline": "blur"}
    assert runner._cli_method_keys(["method=ig", "method.n_steps=5", "+method.x=1", "seed=3"]) == ["n_steps", "x"]


def test_reduced_precision_is_warned_about(conf, tmp_path, caplog):
    from omegaconf import OmegaConf

    for extra, warned in (([], False), (["+method.autocast=bf16"], True)):
        ov = base_overrides(conf, tmp_path / "out", *extra)
        caplog.clear()
        with caplog.at_level("WARNING", logger="benchmarks.run"):
            runner.plan(OmegaConf.to_container(compose(ov), resolve=True), ov)
        assert ("results/precision" in caplog.text) is warned


@pytest.mark.parametrize("value,ok", [("0/1", (0, 1)), ("2/4", (2, 4)), ("4/4", None), ("x", None), ("-1/2", None)])
def test_parse_shard(value, ok):
    if ok is None:
        with pytest.raises(ValueError, match="i/n"):
            runner.parse_shard(value)
    else:
        assert runner.parse_shard(value) == ok
        assert sum(len(runner.shard_slice(7, (i, ok[1]))) for i in range(ok[1])) == 7


@pytest.mark.parametrize("override,message", [
    ("method.n_steps=1", "n_steps"),
    ("+metrics.nope={}", "Choose one of"),
    ("target=guess", "label"),
    ("shard=3/2", "i/n"),
    ("+metrics.completeness.wrong_option=1", "allowed"),
])
def test_bad_values_fail_before_any_work(conf, tmp_path, override, message, monkeypatch):
    built = []
    monkeypatch.setattr(runner.planning, "_build",
                        lambda *a, **k: built.append(a) or (_ for _ in ()).throw(AssertionError))
    with pytest.raises((ValueError, KeyError, TypeError), match=message):
        run_inproc(base_overrides(conf, tmp_path / "out", override))
    assert not built


def test_cli_run_and_wrong_group_name(conf, tmp_path):
    out = tmp_path / "out"
    p = cli(base_overrides(conf, out, f"hydra.run.dir={tmp_path / 'hy'}"), timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert len(load_store(out)) == 6
    bad = cli(base_overrides(conf, out, "method=nonexistent"), timeout=120)
    assert bad.returncode != 0
    assert "Could not find 'method/nonexistent'" in bad.stderr and "t_ig" in bad.stderr  # lists the choices


def test_sigkill_at_any_moment_then_resume(tmp_path):
    """Kill -9 a CLI run while it writes; the re-run completes with every image exactly once."""
    conf = write_conf(tmp_path, {"n": 8}, {"delay": 0.02})
    out = tmp_path / "out"
    args = base_overrides(conf, out, "batch_size=1", f"hydra.run.dir={tmp_path / 'hy'}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.run", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    parts = out / "store" / "parts"
    while time.time() < deadline and len(list(parts.glob("*.parquet"))) < 3 and proc.poll() is None:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    mid = load_store(out)
    assert 0 < len(mid) < 8 and mid["image_id"].is_unique
    p = cli(args, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    df = load_store(out)
    assert sorted(df["image_id"]) == [f"im/{i:02d}.png" for i in range(8)]
    assert not list(parts.glob("*.parquet"))


def _folder_and_timm_configs(tmp_path, source=None):
    """An image folder (2 classes, one broken file) and a tiny timm model as configs; returns (conf, folder)."""
    import yaml
    from PIL import Image

    data = tmp_path / "imgs"
    g = torch.Generator().manual_seed(0)
    for c in ("cat", "dog"):
        (data / c).mkdir(parents=True)
        for k in range(2):
            px = (torch.rand(20, 24, 3, generator=g) * 255).to(torch.uint8).numpy()
            Image.fromarray(px).save(data / c / f"{k}.png")
    (data / "dog" / "broken.png").write_bytes(b"not a png")
    conf = write_conf(tmp_path)
    (conf / "dataset" / "folder.yaml").write_text(yaml.safe_dump(
        {"name": "image_folder", "source": source or str(data), "image_size": 16}))
    (conf / "model" / "tiny_timm.yaml").write_text(yaml.safe_dump(
        {"name": "tiny_timm", "arch": "test_resnet", "pretrained": False, "num_classes": 2,
         "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "input_size": 16}))
    return conf, data


def _run_folder_and_timm(conf, out):
    ov = [o for o in base_overrides(conf, out) if o not in ("dataset=tiny", "model=tiny")]
    return run_inproc([*ov, "dataset=folder", "model=tiny_timm"])


def test_real_builders_image_folder_and_timm(tmp_path):
    """The library's own dataset and classifier builders (not stand-ins): an image folder and a tiny timm model."""
    conf, _ = _folder_and_timm_configs(tmp_path)
    out = tmp_path / "out"
    _run_folder_and_timm(conf, out)
    df = load_store(out).set_index("image_id")
    assert sorted(df.index) == ["cat/0", "cat/1", "dog/0", "dog/1", "dog/broken"]
    assert df.loc["dog/broken", "status"] == "skipped" and df.loc["dog/broken", "note"]
    assert (df.drop("dog/broken")["status"] == "ok").all()
    assert df.loc["cat/0", "label"] == 0 and df.loc["dog/1", "label"] == 1


def test_outputs_name_no_folder_of_the_machine_that_wrote_them(tmp_path, monkeypatch):
    """An embedded dataset is recorded in the manifest by its asset name, not by this machine's cache folder, and
    the report names its own folder relatively: committed outputs hold no absolute path."""
    from benchmarks.assets import embedded

    conf, data = _folder_and_timm_configs(tmp_path, source="embedded:test_folder")
    monkeypatch.setattr(embedded, "resolve_source", lambda s: str(data) if s == "embedded:test_folder" else s)
    out = tmp_path / "out"
    _run_folder_and_timm(conf, out)
    runner.finalize(out)
    [mpath] = out.glob("manifest_image_folder_*.json")
    manifest = json.loads(mpath.read_text())
    assert manifest["source"] == "embedded:test_folder" and len(manifest["ids"]) == 5
    assert manifest["selection"]["source"] == "embedded:test_folder"
    assert (out / "report.html").exists()
    for written in [mpath, out / "report.html", *out.glob("*.md")]:
        text = written.read_text()
        assert str(tmp_path) not in text, written.name


def test_preflight_lists_every_problem(tmp_path):
    ok_ds = {"_target_": "test_run.TinyDataset", "name": "tiny"}
    missing = {"name": "image_folder", "source": str(tmp_path / "nowhere")}
    wrong_head = {"_target_": "test_run.TinyClassifier", "classes": 7}
    ok_model = {"_target_": "test_run.TinyClassifier"}
    cfgs = [{"dataset": missing, "model": ok_model, "method": {"name": "ig"}},
            {"dataset": ok_ds, "model": wrong_head, "method": {"name": "ig"}},
            {"dataset": ok_ds, "model": ok_model, "method": {"name": "ig"}}]
    with pytest.raises(runner.PreflightError) as e:
        runner.preflight(cfgs)
    msg = str(e.value)
    assert "2 problem(s)" in msg and "dataset=image_folder" in msg and "nowhere" in msg
    assert "7 outputs" in msg and "4 classes" in msg
    runner.preflight(cfgs[2:])  # nothing missing: returns quietly


def test_experiment_grids_cover_what_they_promise():
    import yaml
    from omegaconf import OmegaConf

    import attribution
    from attribution.methods import METHODS

    demo_c = OmegaConf.to_container(compose(["experiment=demo"]), resolve=True)
    assert set(demo_c["metrics"]) == set(attribution.available_metrics()) - {"quantus"}
    for spec in runner.metrics_config(demo_c).values():  # every demo metric option is valid
        attribution.build_metric(spec["metric"], **spec["options"])
    assert set(demo_c["suites"]) == {"photos", "mnist", "mnist_vit", "canvas"}
    assert any(getattr(METHODS.get(m), "needs_vae", False) for m in attribution.available_methods())

    for exp, n_jobs in (("demo", None), ("table1", 132)):
        raw = yaml.safe_load((Path(runner.CONFIG_DIR) / "experiment" / f"{exp}.yaml").read_text())
        if exp == "demo":  # benchmarks.demo sweeps the registry: no method list in the config to drift from it
            from benchmarks.demo import plan_jobs

            assert "method" not in ((raw.get("hydra") or {}).get("sweeper") or {}).get("params", {})
            vaes = {"photos": None, "mnist": "mnist_kl", "mnist_vit": "mnist_kl", "canvas": None}
            jobs = plan_jobs(demo_c["suites"], attribution.available_methods(), vaes)
            methods = sorted({m for _, m in jobs})
            from benchmarks.demo import runs_variant

            chosen = demo_c["variant_suites"]
            assert runs_variant(chosen, "mnist", "ig+sg") and runs_variant(chosen, "photos", "guided_ig+idgi")
            assert not runs_variant(chosen, "photos", "ig+sg") and not runs_variant(chosen, "mnist_vit", "ig+idgi")
            assert runs_variant(["photos"], "photos", "ig+sg") and not runs_variant(["photos"], "mnist", "ig+sg")
            assert runs_variant(None, "canvas", "ig+sg")
            assert set(chosen["photos"]) <= set(demo_c["variants"])
        else:
            params = raw["hydra"]["sweeper"]["params"]
            methods = params["method"].split(",")
        for m in methods:
            assert (Path(runner.CONFIG_DIR) / "method" / f"{m}.yaml").exists(), m
        if exp == "demo":
            assert set(methods) == set(attribution.available_methods())
        else:
            assert len(methods) == 11 and "random" not in methods
            assert len(params["dataset"].split(",")) * len(params["model"].split(",")) * len(methods) == n_jobs

    t1 = OmegaConf.to_container(compose(["experiment=table1", "dataset=oxford_pet", "model=inception_v1",
                                         "checkpoint_dir=/ck", "method=ma_gig"]), resolve=True)
    assert t1["model"]["checkpoint"] == "/ck/classifier_oxfordpet/inception_best.pt"
    assert t1["vae"]["name"] == "sd2" and t1["device"] == "cuda" and list(t1["metrics"]) == ["diffid"]
    assert t1["out_dir"] == "results/table1" and t1["preflight"] is True


def test_wandb_logger_gets_the_rows(conf, tmp_path, monkeypatch):
    """logger=wandb goes through benchmarks.wandb_log.WandbLogger: every batch's rows, then the final store rows."""
    import benchmarks.report.wandb_log as wl

    seen = {"rows": 0, "final": None, "kw": None}

    class Spy:
        def __init__(self, **kw):
            seen["kw"] = kw

        def log_rows(self, rows):
            seen["rows"] += len(rows)

        def finish(self, df=None):
            seen["final"] = len(df)

    monkeypatch.setattr(wl, "WandbLogger", Spy)
    out = tmp_path / "out"
    run_inproc(base_overrides(conf, out, "logger=wandb", "logger.mode=offline"))
    assert seen["rows"] == 6 and seen["final"] == 6
    # project null: the logger takes WANDB_PROJECT, else attribution-bench (as W&B's own variables apply)
    assert seen["kw"]["mode"] == "offline" and seen["kw"]["project"] is None
    assert seen["kw"]["name"] == "tiny/tinynet/ig" and seen["kw"]["config"]["method"]["name"] == "ig"


def test_attribution_grid_from_the_cache(conf, tmp_path):
    """finalize draws one image x method grid per (dataset, model) from the kept samples and the cache."""
    from PIL import Image

    from benchmarks.report.grids import samples_path

    out = tmp_path / "out"
    for method in ("ig", "grad_input"):
        run_inproc(base_overrides(conf, out, f"method={method}"))
    written = runner.finalize(out)
    assert any("write_attribution_grids" in w for w in written)
    import numpy as np

    with np.load(samples_path(out, "tiny", "tinynet")) as z:
        assert [str(i) for i in z["ids"]] == [f"im/{i:02d}.png" for i in range(6)]  # every image (up to 32)
        assert z["pixels"].shape[0] == 6 and z["pixels"].dtype == np.uint8  # 8-bit, as read
    png = out / "figures" / "attributions__tiny__tinynet.png"
    w, h = Image.open(png).size
    assert abs(w / h - (1.9 * 3) / (1.9 * 4 + 0.3)) < 0.05  # 4 image rows x (image + 2 methods) columns
    assert "attributions__tiny__tinynet.png" in (out / "report.html").read_text() or \
        "data:image/png" in (out / "report.html").read_text()


def test_rows_keep_their_configs_and_labels_name_the_keys_two_configs_differ_in(conf, tmp_path):
    """Two configs of one method in one folder: each row stores what its hashes stand for (method and metric
    configs), and the tables label the configs by the keys they differ in, not by a hash."""
    from benchmarks.report import table as tab

    out = tmp_path / "out"
    run_inproc(base_overrides(conf, out))
    run_inproc(base_overrides(conf, out, "method.n_steps=4", "method.baseline=mean"))
    df = load_store(out)
    assert df["method_hash"].nunique() == 2
    cfgs = {(json.loads(c)["n_steps"], json.loads(c)["baseline"]) for c in df["method_config"]}
    assert cfgs == {(4, "mean"), (6, "black")}
    assert json.loads(df["metric_configs"].iloc[0]) == {"completeness": {"metric": "completeness", "options": {}}}
    labels = set(tab.with_variants(df)["variant"])
    assert labels == {"ig[baseline=black, n_steps=6]", "ig[baseline=mean, n_steps=4]"}, labels
    assert tab.main([str(out), "--baseline", "ig[baseline=black, n_steps=6]", "--no-published"]) in (0, None)
    text = (out / "table.md").read_text()
    assert "IG [baseline=mean, n_steps=4]" in text and "IG [baseline=black, n_steps=6]" in text
    assert "IG [baseline=mean, n_steps=4]" in (out / "comparison.md").read_text()


def test_demo_workers_run_jobs_side_by_side_with_the_same_rows_as_one_after_another(tmp_path, capsys):
    """benchmarks.demo's task runner: two jobs in two spawned worker processes write the rows that the same jobs
    one after another in this process write."""
    from benchmarks.demo import run_all, run_job

    conf = write_conf(tmp_path)
    stores = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        tasks = [(m, run_job, [*base_overrides(conf, out, f"method={m}")]) for m in ("t_ig", "t_gi")]
        run_all(tasks, workers)
        stores[workers] = load_store(out).sort_values(["method", "image_id"]).reset_index(drop=True)
    said = capsys.readouterr().out
    assert said.count("images in") == 4 and "[2/2] t_gi: 6 images" in said
    cols = ["method", "image_id", "status", "completeness.completeness_error"]
    pd.testing.assert_frame_equal(stores[1][cols], stores[2][cols], rtol=1e-6)
