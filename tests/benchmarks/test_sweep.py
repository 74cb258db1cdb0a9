"""A tiny sweep (2 methods x 2 shards) through Hydra's submitit launcher run as local processes, end to end:
four jobs write their shards concurrently, the callback merges them into the tables when the sweep ends."""
from __future__ import annotations

import pytest
from test_run import base_overrides, cli, write_conf

from benchmarks.io.store import load_store

pytest.importorskip("hydra_plugins.hydra_submitit_launcher")


def test_submitit_local_sweep_merges_into_one_table(tmp_path):
    conf = write_conf(tmp_path, {"n": 5})
    out = tmp_path / "out"
    args = ["-m", "hydra/launcher=slurm_local", f"hydra.sweep.dir={tmp_path / 'sweep'}",
            *[o for o in base_overrides(conf, out) if o not in ("write_tables=false", "method=t_ig")],
            "method=t_ig,t_gi", "shard=0/2,1/2"]
    p = cli(args, timeout=500)
    assert p.returncode == 0, (p.stdout[-2000:], p.stderr[-4000:])
    df = load_store(out)
    assert sorted(df["method"].unique()) == ["grad_input", "ig"]
    counts = df.groupby(["method", "image_id"]).size()
    assert len(counts) == 2 * 5 and (counts == 1).all()  # every image exactly once per method
    assert df.groupby("method")["shard"].agg(lambda s: sorted(set(s))).tolist() == [["0/2", "1/2"]] * 2
    assert len(list((out / "store").glob("*.parquet"))) == 4  # one file per job (method x shard)
    table = out / "table.csv"
    if table.exists():  # written by benchmarks.table once the sweep ended
        text = table.read_text()
        assert "ig" in text and "grad_input" in text


def test_preflight_stops_a_sweep_before_any_job(tmp_path):
    import yaml

    conf = write_conf(tmp_path)
    (conf / "dataset" / "gone.yaml").write_text(yaml.safe_dump(
        {"name": "image_folder", "source": str(tmp_path / "no_such_folder")}))
    out = tmp_path / "out"
    args = ["-m", f"hydra.sweep.dir={tmp_path / 'sweep'}", "preflight=true",
            *[o for o in base_overrides(conf, out) if o not in ("dataset=tiny", "method=t_ig")],
            "dataset=gone,tiny", "method=t_ig,t_gi"]
    p = cli(args, timeout=300)
    assert p.returncode != 0
    assert "cannot start: 1 problem(s)" in p.stderr and "no_such_folder" in p.stderr
    assert not (out / "store").exists()  # no job ran, not even the ones whose data is there
