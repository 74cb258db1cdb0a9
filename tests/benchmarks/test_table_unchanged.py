"""The tables flag a metric whose perturbation left most inputs unchanged (its per-image ``<metric>.unchanged``
output, set by the Quantus adapter where Quantus warned): the column is marked, ranks nobody and is called no
result; a few such images (a step that blackens black pixels) flag nothing."""
from synth_store import synth_store

from benchmarks.report import table as tab


def test_the_table_flags_a_metric_that_left_most_inputs_unchanged():
    df = synth_store(n=12, models=("resnet18",), methods={"ig": 0.3, "sig": 0.6}, with_curves=False)
    df["quantus_pixel_flipping.unchanged"] = df["quantus_infidelity.unchanged"] = 0.0
    images = sorted(set(df.image_id))
    df.loc[df.image_id.isin(images[:7]), "quantus_pixel_flipping.unchanged"] = 1.0  # 7 of 12 images, both methods
    df.loc[df.image_id == images[0], "quantus_infidelity.unchanged"] = 1.0  # one image: no flag
    s = tab.summarize(df, "quantus", n_boot=50)
    flag = s.set_index(["variant", "column"])["flag"]
    why = flag[("ig", "quantus_pixel_flipping.quantus_pixel_flipping")]
    assert "left the input unchanged on 14 of 24 scored rows" in why and "perturb_func" in why
    assert flag[("ig", "quantus_infidelity.quantus_infidelity")] == ""
    assert not {"quantus_pixel_flipping.unchanged", "quantus_infidelity.unchanged"} & set(s["column"])  # no column
    assert (s.loc[s["column"] == "quantus_pixel_flipping.quantus_pixel_flipping", "rank"] == 0).all()
    md = tab.build_tables(df, ["quantus"], baseline=None, n_boot=50, published=False).markdown()
    assert "⚠ R18 pixel_flipping: its perturbation left the input unchanged on 14 of 24" in md, md
