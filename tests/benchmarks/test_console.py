"""A quiet, honest console: Quantus's notices and warnings, progress in log files, configuration errors without a
traceback, what Ctrl-C leaves, hub lookups without network."""
from __future__ import annotations

import logging
import warnings

import pytest
from test_run import base_overrides, cli, run_inproc, write_conf

from benchmarks.run import console


def test_quantus_notices_dropped_and_warnings_named(images, smooth_model, caplog):
    pytest.importorskip("quantus")
    import attribution

    x, t = images
    metric = attribution.build_metric("quantus_pixel_flipping", softmax=True, features_in_step=64)
    with caplog.at_level(logging.INFO):
        metric(smooth_model, x, x.clone(), t)  # softmax=True on a model without Softmax: Quantus logs a notice
    assert not [r for r in caplog.records if "quantus" in r.pathname]
    with pytest.warns(UserWarning) as rec:
        for _ in range(3):
            with metric._quiet():
                warnings.warn_explicit("perturb_func didn't cause change in input", UserWarning,
                                       "/site-packages/quantus/helpers/warn.py", 1)
    said = [str(w.message) for w in rec]
    assert said == ["metric 'quantus_pixel_flipping' (Quantus PixelFlipping): perturb_func didn't cause change "
                    "in input"]  # once, with the metric's name


def test_progress_in_a_log_file_has_no_carriage_returns(tmp_path, capsys):
    conf = write_conf(tmp_path)
    run_inproc([*base_overrides(conf, tmp_path / "out"), "progress=true"])
    err = capsys.readouterr().err
    assert "\r" not in err


def test_config_error_is_one_line_without_traceback(tmp_path):
    conf = write_conf(tmp_path)
    args = base_overrides(conf, tmp_path / "out", "method.n_steps=-1")
    p = cli(args, timeout=300, cwd=tmp_path)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr and "invalid n_steps=-1" in p.stderr
    assert "--debug" in p.stderr
    p = cli([*args, "--debug"], timeout=300, cwd=tmp_path)
    assert p.returncode != 0 and "Traceback" in p.stderr
    assert not (tmp_path / "out").exists()
    # Hydra's own files: under results/.hydra (ignored by git), no outputs/ in the folder the command started in
    assert not (tmp_path / "outputs").exists() and (tmp_path / "results" / ".hydra" / "runs").is_dir()


def test_ctrl_c_says_what_is_saved_and_how_to_resume(tmp_path, monkeypatch, capsys):
    from attribution.metrics.completeness import Completeness

    conf = write_conf(tmp_path)
    calls = {"n": 0}
    orig = Completeness.compute

    def interrupted(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return orig(self, *a, **k)

    monkeypatch.setattr(Completeness, "compute", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_inproc(base_overrides(conf, tmp_path / "out"))
    err = capsys.readouterr().err
    assert "interrupted: 2 row(s) of this run saved" in err and "again to resume" in err


def test_no_network_puts_the_hub_offline_once_per_process(monkeypatch):
    import socket

    probes = []

    def refuse(addr, timeout=None):
        probes.append(addr)
        raise OSError("network is unreachable")

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(socket, "create_connection", refuse)
    import sys

    if "huggingface_hub.constants" in sys.modules:  # the function puts an imported hub offline: undo it after
        monkeypatch.setattr(sys.modules["huggingface_hub.constants"], "HF_HUB_OFFLINE",
                            sys.modules["huggingface_hub.constants"].HF_HUB_OFFLINE)
    console.hub_reachable.cache_clear()
    try:
        assert console.hub_offline_if_unreachable() and console.hub_offline_if_unreachable()
        assert len(probes) == 1 and probes[0][0] == "huggingface.co"
        import os

        assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"
        probes.clear()
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        console.hub_reachable.cache_clear()
        assert console.hub_offline_if_unreachable() and probes == []  # the user's setting: no probe
    finally:
        console.hub_reachable.cache_clear()


def test_default_outputs_are_ignored_by_git():
    """The default out_dir and Hydra's own folders land where .gitignore covers them, never as untracked files."""
    import shutil
    import subprocess
    from pathlib import Path

    from benchmarks.run.config import compose_config

    root = Path(__file__).resolve().parents[2]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(root / "configs"), version_base=None):
        hy = compose("config", return_hydra_config=True).hydra
        run_dir, sweep_dir = str(hy.run.dir), str(hy.sweep.dir)
    out_dir = compose_config([])["out_dir"]
    paths = [f"{d}/x.txt" for d in (out_dir, run_dir, sweep_dir)]
    p = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=root, capture_output=True, text=True)
    assert sorted(p.stdout.split()) == sorted(paths), p.stdout


def test_model_library_notices_at_error_level(monkeypatch):
    diffusers = pytest.importorskip("diffusers")
    monkeypatch.delenv("DIFFUSERS_VERBOSITY", raising=False)
    before = diffusers.utils.logging.get_verbosity()
    try:
        diffusers.utils.logging.set_verbosity_warning()
        console.quiet_libraries()
        assert diffusers.utils.logging.get_verbosity() == logging.ERROR
        import os

        assert os.environ["DIFFUSERS_VERBOSITY"] == "error"  # for the processes a launcher starts
    finally:
        diffusers.utils.logging.set_verbosity(before)


def test_ctrl_c_on_the_command_line_ends_without_traceback(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from test_run import HERE, ROOT

    conf = write_conf(tmp_path, {"n": 60}, {"delay": 0.05})  # long enough that the signal lands mid-run under load
    out = tmp_path / "out"
    args = base_overrides(conf, out, "batch_size=1")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]), "HYDRA_FULL_ERROR": "0"}
    # a pytest-xdist worker ignores SIGINT and a child would inherit that: give it the default disposition back
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.run", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    parts = out / "store" / "parts"
    deadline = time.time() + 120
    # rows saved: part files, or a shard file they were already folded into (the fold may empty parts/ at any time)
    while (time.time() < deadline and proc.poll() is None
           and not list(parts.glob("*.parquet")) and not list(parts.parent.glob("*.parquet"))):
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted:" in err and "again to resume" in err and "Traceback" not in err


def test_in_process_runs_get_the_quiet_console_too(tmp_path, monkeypatch):
    """benchmarks.demo and launcher workers call run() without the command line's main()."""
    calls = []
    monkeypatch.setattr(console, "quiet_libraries", lambda: calls.append("quiet"))
    monkeypatch.setattr(console, "hub_offline_if_unreachable", lambda: calls.append("hub") or True)
    conf = write_conf(tmp_path)
    run_inproc(base_overrides(conf, tmp_path / "out"))
    assert calls == ["quiet", "hub"]
