"""Bring your own method or metric without forking: a class in the user's own installed package, made known by an
entry point (``attribution.methods`` / ``attribution.metrics``), runs in the harness and in
``benchmarks.table --new-method`` like a built-in one, with its own display name; a broken plugin stops in one line.

The package is written here and installed offline into a temporary folder put on ``PYTHONPATH`` (never into the
environment), so ``importlib.metadata`` finds its entry points only in the processes the test starts."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "tests" / "benchmarks"

PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "byo-scaled"
version = "0.1"

[tool.setuptools]
py-modules = ["byo_scaled"]

[project.entry-points."attribution.methods"]
scaled_gxi = "byo_scaled:ScaledGradInput"

[project.entry-points."attribution.metrics"]
byo_mass = "byo_scaled"
"""

MODULE = '''\
"""A user's own method (Gradient x Input, scaled) and metric (the map's absolute mass), registered with facts."""
import torch

from attribution import register_method, register_metric
from attribution.methods.grad_input import GradientInput
from attribution.metrics.base import Metric


@register_method("scaled_gxi", display="Scaled GxI", order=60)
class ScaledGradInput(GradientInput):
    name = "scaled_gxi"

    def __init__(self, scale: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def _attribute(self, model, x, target):
        out = super()._attribute(model, x, target)
        out.attr = out.attr * self.scale
        return out


@register_metric("byo_mass", columns=(("mass", "Mass", "max"),))
class Mass(Metric):
    def compute(self, model, x, attr, target):
        return {"mass": attr.abs().flatten(1).sum(1)}
'''


def _install(tmp_path: Path) -> Path:
    src = tmp_path / "byo_src"
    src.mkdir()
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "byo_scaled.py").write_text(MODULE)
    site = tmp_path / "site"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation",
                          "--no-deps", "--target", str(site), str(src)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert list(site.glob("byo_scaled-*.dist-info/entry_points.txt")), sorted(p.name for p in site.iterdir())
    return site


def _env(*paths) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in (*paths, HERE, ROOT)),
            "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"}


def test_an_installed_plugin_runs_and_is_compared_with_its_own_display_name(tmp_path):
    sys.path.insert(0, str(HERE))
    try:
        from test_run import base_overrides, write_conf
    finally:
        sys.path.remove(str(HERE))
    site = _install(tmp_path)
    conf, out = write_conf(tmp_path), tmp_path / "out"
    env = _env(site)
    ov = [o for o in base_overrides(conf, out) if not o.startswith("method=")]
    run = subprocess.run([sys.executable, "-m", "benchmarks.run", "-m", "method=scaled_gxi,t_gi",
                          "+metrics.byo_mass={}", *ov, "hydra.sweep.dir=" + str(tmp_path / "multirun")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    table = subprocess.run([sys.executable, "-m", "benchmarks.table", str(out), "--new-method", "scaled_gxi",
                            "--no-published", "--n-boot", "50"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=600)
    assert table.returncode == 0, table.stderr[-3000:]
    md = (out / "table.md").read_text()
    assert "| Scaled GxI " in md and "| G×I " in md, md
    assert md.index("| G×I ") < md.index("| Scaled GxI "), "rows in registered order: G×I (0) before it (60)"
    assert "Mass" in md, "the plugin metric's column label"
    comparison = (out / "comparison.md").read_text()
    assert "Scaled GxI" in comparison and "G×I" in comparison, comparison
    assert not (ROOT / "byo_scaled.py").exists()

    # the library lists it like a built-in one, in the processes that see the package only
    lst = subprocess.run([sys.executable, "-m", "attribution", "list", "methods"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert any(line.startswith("scaled_gxi") and "Scaled GxI" in line and "scale=2.0" in line
               for line in lst.stdout.splitlines()), lst.stdout + lst.stderr
    import attribution

    assert "scaled_gxi" not in attribution.available_methods()  # this process never saw the package


def _broken_dist(root: Path, value: str) -> Path:
    """A hand-written dist-info whose entry point names ``value`` (found by importlib.metadata on sys.path)."""
    info = root / "broken_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[attribution.methods]\nbroken = {value}\n")
    return root


def test_a_broken_plugin_stops_in_one_line_naming_its_package_and_entry_point(tmp_path, monkeypatch):
    from attribution.registry import PluginError, Registry

    monkeypatch.syspath_prepend(str(_broken_dist(tmp_path, "no_such_module_xyz:Method")))
    reg = Registry("method")
    with pytest.raises(PluginError) as e:
        reg.names()
    msg = str(e.value)
    assert "\n" not in msg
    assert "'broken-plugin'" in msg and "attribution.methods: broken = no_such_module_xyz:Method" in msg
    assert "No module named 'no_such_module_xyz'" in msg and "pip uninstall broken-plugin" in msg
    with pytest.raises(PluginError):  # loaded once: the same line again, no second import
        reg.get("ig")


def test_an_entry_point_naming_an_undecorated_class_registers_it_under_its_name(tmp_path, monkeypatch):
    from attribution.registry import Registry

    (tmp_path / "plain_plugin_mod.py").write_text(textwrap.dedent("""
        class Plain:
            def __init__(self, k: int = 3):
                self.k = k
    """))
    _broken_dist(tmp_path, "plain_plugin_mod:Plain")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("method")
    assert reg.names() == ["broken"] and reg.build("broken", k=4).k == 4
    assert Registry("dataset").names() == []  # only methods and metrics read plugins


def test_the_list_and_table_commands_report_a_broken_plugin_in_one_line(tmp_path):
    env = _env(_broken_dist(tmp_path / "site", "no_such_module_xyz:Method"))
    out = subprocess.run([sys.executable, "-m", "attribution", "list", "methods"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert out.stderr.strip().count("\n") == 0 and "pip uninstall broken-plugin" in out.stderr
    out = subprocess.run([sys.executable, "-m", "benchmarks.table", str(tmp_path)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert out.stderr.strip().count("\n") == 0 and "pip uninstall broken-plugin" in out.stderr


def test_a_registered_method_without_a_yaml_composes_and_your_yaml_comes_first(tmp_path):
    import warnings

    import attribution
    from attribution.methods import METHODS
    from attribution.methods.grad_input import GradientInput
    from benchmarks.run.config import compose_config
    from benchmarks.run.plugins import register_plugin_configs

    class Tmp(GradientInput):
        def __init__(self, gain: float = 1.5, **kwargs):
            super().__init__(**kwargs)

    attribution.register_method("zz_no_yaml", display="NoYAML")(Tmp)
    try:
        assert "zz_no_yaml" in register_plugin_configs()
        assert compose_config(["method=zz_no_yaml"])["method"] == {"name": "zz_no_yaml", "gain": 1.5,
                                                                   "baseline": "black", **_shared_defaults()}
        (tmp_path / "method").mkdir()
        (tmp_path / "method" / "zz_no_yaml.yaml").write_text("name: zz_no_yaml\ngain: 3.0\n")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            register_plugin_configs()  # as at the harness's import, after the filters above
            got = compose_config([f"hydra.searchpath=[file://{tmp_path}]", "method=zz_no_yaml"])["method"]
        assert got["gain"] == 3.0 and got["name"] == "zz_no_yaml"
        assert not [w for w in caught if "ConfigStore" in str(w.message)]  # no notice about the node of that name
    finally:
        METHODS.unregister("zz_no_yaml")


def _shared_defaults() -> dict:
    """The options every method inherits (AttributionMethod's), as a config lists them."""
    from benchmarks.run.plugins import method_node

    node = method_node("grad_input")
    return {k: v for k, v in node.items() if k not in ("name", "baseline")}
