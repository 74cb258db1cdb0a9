"""The tables flag a metric whose perturbation left inputs unchanged (its per-image ``<metric>.unchanged`` output,
set by the Quantus adapter where Quantus warned): the column is marked, ranks nobody and is called no result."""
from synth_store import synth_store

from benchmarks.report import table as tab


def test_the_table_flags_a_metric_that_left_inputs_unchanged():
    df = synth_store(n=12, models=("resnet18",), methods={"ig": 0.3, "sig": 0.6}, with_curves=False)
    df["quantus_pixel_flipping.unchanged"] = 0.0
    df.loc[df.image_id == df.image_id.iloc[0], "quantus_pixel_flipping.unchanged"] = 1.0  # one image, both methods
    s = tab.summarize(df, "quantus", n_boot=50)
    flag = s.set_index(["variant", "column"])["flag"]
    why = flag[("ig", "quantus_pixel_flipping.quantus_pixel_flipping")]
    assert "left the input unchanged on 2 of 24 scored rows" in why and "perturb_func" in why
    assert flag[("ig", "quantus_infidelity.quantus_infidelity")] == ""
    assert "quantus_pixel_flipping.unchanged" not in set(s["column"])  # a flag, never a column of its own
    assert (s.loc[s["column"] == "quantus_pixel_flipping.quantus_pixel_flipping", "rank"] == 0).all()
    md = tab.build_tables(df, ["quantus"], baseline=None, n_boot=50, published=False).markdown()
    assert "⚠ R18 pixel_flipping: its perturbation left the input unchanged on 2 of 24" in md, md
