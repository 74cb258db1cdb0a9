"""The evaluation subset saved beside the results: used only when the user names it or when the run makes exactly
the same selection; another selection of the same images fails at once naming what differs; nothing is written
before every check passed."""
from __future__ import annotations

import json

import pytest
from test_run import _folder_and_timm_configs, base_overrides, run_inproc, write_conf

from attribution.errors import ConfigError
from benchmarks.io.store import load_store


def _manifests(out):
    return sorted(out.glob("manifest_*.json"))


def test_a_changed_selection_fails_naming_what_differs(tmp_path):
    conf = write_conf(tmp_path)
    out = tmp_path / "out"
    run_inproc(base_overrides(conf, out))
    [first] = _manifests(out)
    assert first.name.startswith("manifest_tiny_")
    assert json.loads(first.read_text())["selection"]["n"] == 6
    with pytest.raises(ConfigError) as e:  # earlier, the old manifest won and the same 6 images ran again
        run_inproc(base_overrides(conf, out, "dataset.n=8"))
    msg = str(e.value)
    assert "dataset.n: 6 -> 8" in msg and "out_dir=" in msg and f"dataset.manifest={first}" in msg
    assert _manifests(out) == [first]
    # a new folder takes the new selection; naming the earlier manifest evaluates the earlier images again
    run_inproc(base_overrides(conf, tmp_path / "out8", "dataset.n=8"))
    assert len(load_store(tmp_path / "out8")) == 8
    res = run_inproc(base_overrides(conf, out, f"dataset.manifest={first}"))
    assert res.skipped_done == 6 and res.evaluated == 0


def test_the_same_selection_reuses_its_manifest(tmp_path):
    conf = write_conf(tmp_path)
    out = tmp_path / "out"
    run_inproc(base_overrides(conf, out))
    [m] = _manifests(out)
    record = json.loads(m.read_text())
    record["ids"] = record["ids"][:4]  # what the folder held when the subset was drawn
    m.write_text(json.dumps(record))
    res = run_inproc(base_overrides(conf, out))
    assert res.evaluated == 0 and res.skipped_done == 4


def test_two_image_folders_share_an_out_dir(tmp_path):
    conf, data = _folder_and_timm_configs(tmp_path)
    other = tmp_path / "imgs2"
    other.mkdir()
    for p in sorted(data.rglob("*.png"))[:3]:
        (other / p.parent.name).mkdir(exist_ok=True)
        (other / p.parent.name / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "out"
    ov = [o for o in base_overrides(conf, out) if o not in ("dataset=tiny", "model=tiny")]
    run_inproc([*ov, "dataset=folder", "model=tiny_timm"])
    run_inproc([*ov, "dataset=folder", "model=tiny_timm", f"dataset.source={other}"])
    assert len(_manifests(out)) == 2  # earlier the second run failed on the first one's manifest_image_folder.json


def test_invalid_subset_size_fails_even_with_a_manifest(tmp_path):
    conf, _ = _folder_and_timm_configs(tmp_path)
    out = tmp_path / "out"
    ov = [o for o in base_overrides(conf, out) if o not in ("dataset=tiny", "model=tiny")]
    run_inproc([*ov, "dataset=folder", "model=tiny_timm"])
    [m] = _manifests(out)
    for extra in (["+dataset.subset_size=-3"], ["+dataset.subset_size=-3", f"++dataset.manifest={m}"]):
        with pytest.raises(ConfigError, match="dataset.subset_size"):
            run_inproc([*ov, "dataset=folder", "model=tiny_timm", *extra])


def test_nothing_is_written_by_a_run_that_fails_its_checks(tmp_path):
    conf, _ = _folder_and_timm_configs(tmp_path)
    out = tmp_path / "out"
    ov = [o for o in base_overrides(conf, out) if o not in ("dataset=tiny", "model=tiny")]
    with pytest.raises(Exception, match="checkpoint"):
        run_inproc([*ov, "dataset=folder", "model=tiny_timm", f"+model.checkpoint={tmp_path / 'missing.pt'}"])
    assert not out.exists() or not any(out.rglob("*"))
