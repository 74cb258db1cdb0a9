"""Bring your own data and model: the image_folder / hf dataset configs, the check of a dataset against its
classifier before any work, and the classifier's accuracy on the evaluated images in the summary and tables."""
from __future__ import annotations

import pytest
import yaml
from test_run import _folder_and_timm_configs, base_overrides, run_inproc, write_conf

from attribution.errors import ConfigError
from benchmarks.io.store import load_store


def _own(conf, out, *extra):
    ov = [o for o in base_overrides(conf, out) if o not in ("dataset=tiny", "model=tiny")]
    return [*ov, "dataset=image_folder", *extra]


def test_image_folder_config_runs_your_folder(tmp_path, caplog):
    import logging

    conf, data = _folder_and_timm_configs(tmp_path)
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO, logger="benchmarks.run"):
        run_inproc(_own(conf, out, f"dataset.source={data}", "dataset.image_size=16", "model=tiny_timm"))
    df = load_store(out)
    assert sorted(df["image_id"]) == ["cat/0", "cat/1", "dog/0", "dog/1", "dog/broken"]
    assert "classifier top-1 accuracy" in caplog.text
    with pytest.raises(ConfigError, match="dataset.source is required"):
        run_inproc(_own(conf, tmp_path / "out2", "model=tiny_timm"))


def test_hf_config_names_only_options_of_the_loader():
    from pathlib import Path

    from attribution.datasets import DATASETS

    cfg = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "dataset" / "hf.yaml").read_text())
    assert cfg.pop("name") == "hf"
    DATASETS.check_options("hf", cfg)


def test_a_model_that_cannot_take_the_images_fails_before_any_work(tmp_path):
    conf, data = _folder_and_timm_configs(tmp_path)
    (conf / "model" / "tiny_vit.yaml").write_text(yaml.safe_dump(
        {"name": "tiny_vit", "arch": "test_vit", "pretrained": False, "num_classes": 2, "mean": [0.5] * 3,
         "std": [0.25] * 3, "input_size": 16, "model_kwargs": {"img_size": 16}}))
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as e:  # earlier: a raw assertion from inside timm, after loading everything
        run_inproc(_own(conf, out, f"dataset.source={data}", "dataset.image_size=24", "model=tiny_vit"))
    assert "model=tiny_vit cannot classify the images of dataset=image_folder (shape 3x24x24)" in str(e.value)
    assert "dataset.image_size=16" in str(e.value)
    with pytest.raises(ConfigError) as e:
        run_inproc(_own(conf, out, f"dataset.source={data}", "dataset.image_size=16", "dataset.channels=1",
                        "model=tiny_timm"))
    assert "dataset.channels=3" in str(e.value)
    assert not out.exists() or not any(out.rglob("*"))


def test_tables_show_the_classifiers_accuracy():
    from synth_store import synth_store

    from benchmarks.report import table as tab

    df = synth_store(n=12, models=("resnet18",), methods={"ig": 0.3, "sig": 0.6})
    df.loc[df.image_id == df.image_id.iloc[0], "pred"] = 99  # one of 12 images misclassified
    md = tab.build_tables(df, ["diffid"], baseline=None, n_boot=50, published=False).markdown()
    assert "Classifier top-1 accuracy on the evaluated images: R18 0.917 (12 images)" in md


def test_a_method_class_of_your_own_package_runs_from_a_target_in_your_config_folder(tmp_path, monkeypatch):
    from attribution.errors import ConfigError as CE
    from attribution.methods import METHODS

    (tmp_path / "my_own_methods.py").write_text(
        "from attribution.methods.grad_input import GradientInput\n\n\n"
        "class HalvedGradInput(GradientInput):\n"
        "    def _attribute(self, model, x, target):\n"
        "        out = super()._attribute(model, x, target)\n"
        "        out.attr = out.attr / 2\n"
        "        return out\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    conf = write_conf(tmp_path)
    (conf / "method" / "halved.yaml").write_text(yaml.safe_dump(
        {"_target_": "my_own_methods.HalvedGradInput", "name": "halved_gxi", "baseline": "black"}))
    (conf / "method" / "nowhere.yaml").write_text(yaml.safe_dump({"_target_": "no_such_pkg_xyz.M", "name": "x"}))
    out = tmp_path / "out"
    try:
        run_inproc([*base_overrides(conf, out), "method=halved"])
        run_inproc([*base_overrides(conf, out), "method=t_gi"])
    finally:
        METHODS.unregister("halved_gxi")
    df = load_store(out)
    assert sorted(set(df["method"])) == ["grad_input", "halved_gxi"]
    ok = df[df.status == "ok"].set_index(["method", "image_id"])["completeness.completeness_error"]
    assert len(ok) == 12 and (ok["halved_gxi"] != ok["grad_input"]).all()  # its own maps, not G×I's
    with pytest.raises(CE, match=r"invalid method._target_='no_such_pkg_xyz.M'.*No module named"):
        run_inproc([*base_overrides(conf, tmp_path / "o2"), "method=nowhere"])
