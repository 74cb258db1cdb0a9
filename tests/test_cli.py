"""The ``attribution-bench`` console command: listings of what a config can name, the harness's tools; the metric
configs list their options, so ``metrics.<name>.<option>=...`` works without a ``+``."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

import attribution
from attribution import cli

ROOT = Path(__file__).resolve().parents[1]


def test_console_command_is_declared():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["attribution-bench"] == "attribution.cli:main"


def test_list_names_everything_a_config_can_name(capsys):
    assert cli.main(["list", "methods", "metrics", "datasets", "models", "vaes", "experiments"]) == 0
    out = capsys.readouterr().out
    for name in attribution.available_methods() + attribution.available_metrics():
        assert f"\n{name} " in out or out.startswith(f"{name} ") or f"\n{name}\t" in out, name
    for group in ("dataset", "model", "vae", "experiment"):
        for p in (ROOT / "configs" / group).glob("*.yaml"):
            assert f"{group}={p.stem}" in out, p
    assert "n_steps=200" in out and "ratios=" in out and "reduce_channels='sum'" in out
    assert cli.main(["list", "model"]) == 2 and "choose from methods, metrics" in capsys.readouterr().err
    assert cli.main(["frobnicate"]) == 2


def test_module_entry_point_forwards_to_the_harness(tmp_path):
    p = subprocess.run([sys.executable, "-m", "attribution", "table", str(tmp_path)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "no results under" in p.stderr  # benchmarks.table answered


def _metric_entries():
    for path in sorted((ROOT / "configs" / "metrics").glob("*.yaml")):
        for name, opts in (yaml.safe_load(path.read_text()) or {}).items():
            yield path.name, name, dict(opts or {})


@pytest.mark.parametrize("where,name,opts", list(_metric_entries()), ids=lambda v: str(v) if isinstance(v, str)
                         else None)
def test_metric_configs_list_their_options(where, name, opts):
    from benchmarks.run.config import metric_defaults

    metric = opts.pop("metric", name)
    opts.pop("enabled", None)
    defaults = {k: v for k, v in metric_defaults(metric).items() if k not in ("mean", "std", "registered_name")}
    if metric.startswith("quantus"):
        assert set(defaults) - {"metric_name"} <= set(opts), f"{where}: {name} lacks {set(defaults) - set(opts)}"
    else:
        assert set(opts) == set(defaults), f"{where}: {name}"
    attribution.build_metric(metric, **opts)  # every listed value is valid


def test_a_metric_option_is_set_without_plus_and_defaults_rescore_nothing():
    from benchmarks.run.config import compose_config, metric_hash, metrics_config

    cfg = compose_config(["metrics.diffid.ratios=[0.25,0.5]"])
    assert metrics_config(cfg)["diffid"]["options"]["ratios"] == [0.25, 0.5]
    listed = metrics_config(compose_config([]))["diffid"]
    assert metric_hash(listed) == metric_hash({"metric": "diffid", "options": {}})  # as before the YAML listed them
    assert metric_hash(metrics_config(cfg)["diffid"]) != metric_hash(listed)


def test_a_shared_method_setting_has_a_command_line_spelling():
    """``+method_settings.all.n_steps=8`` across a grid: applied where the method has the option, ignored where not
    (Hydra's grammar cannot write the YAML's "*" key on the command line)."""
    from benchmarks.run.config import compose_config, method_config

    for extra in ([], ["experiment=demo"]):
        ig = method_config(compose_config([*extra, "method=ig", "+method_settings.all.n_steps=8"]))
        gi = method_config(compose_config([*extra, "method=grad_input", "+method_settings.all.n_steps=8"]))
        assert ig["n_steps"] == 8 and "n_steps" not in gi
