"""benchmarks.perf.flops: the FLOP counter on a hand-computed layer, the cost combination, and the method rows."""
import torch

from benchmarks.perf import flops


def test_count_flops_of_a_convolution_by_hand():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    x = torch.zeros(1, 3, 32, 32)
    assert flops.count_flops(lambda: conv(x)) == 2 * 8 * 3 * 9 * 32 * 32  # one multiply-add = 2 FLOPs


def test_flops_of_combines_rows_and_unit_costs():
    unit = {"classifier_fb": 2, "classifier_f": 1, "decoder_f": 10, "decoder_fb": 30, "encoder": 5}
    rows = {"fb": 3, "f": 1, "decoder_f": 4, "decoder_b": 2, "encoder": 2}
    # 3*2 + 1*1 + 4*10 (forwards) + 2*(30-10) (backwards) + 2*5
    assert flops.flops_of(rows, unit) == 97


def test_rows_ours_and_the_authors_for_ma_gig():
    assert flops.ours_rows("ma_gig", 200, 256) == {"fb": 200, "f": 1, "decoder_f": 199, "decoder_b": 198,
                                                   "encoder": 2}
    # docs/upstream_methods.md 2.13: 399 F+B, 2E + 397D + 199Db
    assert flops.UPSTREAM_ROWS["ma_gig"](200) == {"fb": 399, "decoder_f": 397, "decoder_b": 199, "encoder": 2}
    assert flops.UPSTREAM_ROWS["guided_ig"](200) == {"fb": 399}


def test_table_on_the_meta_device(tmp_path):
    unit = flops.unit_flops("tiny", 32, "small")
    assert unit["classifier_fb"] > unit["classifier_f"] > 0 and unit["decoder_fb"] > unit["decoder_f"] > 0
    text = flops.table("tiny", 32, 8, "small")
    row = next(line for line in text.splitlines() if line.startswith("| guided_ig |"))
    ratio = float(row.rstrip(" |").split("|")[-1].strip().rstrip("x"))
    expected = 15 * unit["classifier_fb"] / (7 * unit["classifier_fb"] + unit["classifier_f"])
    assert abs(ratio - expected) < 0.006
    out = tmp_path / "flops.md"
    assert flops.main(["--model", "tiny", "--image-size", "32", "--n-steps", "8", "--vae", "small",
                       "--out", str(out)]) == 0
    flops.main(["--model", "tiny", "--image-size", "64", "--n-steps", "8", "--vae", "none", "--out", str(out)])
    text = out.read_text()
    assert text.count("## tiny, 32x32") == 1 and text.count("## tiny, 64x64") == 1  # sections kept


def test_flops_of_counts_extra_backward_rows():
    unit = {"classifier_fb": 3, "classifier_f": 1}
    assert flops.flops_of({"fb": 2, "b": 4, "f": 1}, unit) == 2 * 3 + 4 * (3 - 1) + 1


def test_grid_table_totals_its_rows():
    text = flops.grid_table(peak_tflops=100.0)
    rows = [line.split("|") for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    head = [c.strip() for c in rows[0]]
    assert head[2:6] == ["vit_b16 PFLOP", "vgg16 PFLOP", "resnet18 PFLOP", "inception_v1 PFLOP"]  # SIG's order
    assert "vit_b16 224, vgg16 256" in text  # each model at its own input size
    body = {r[1].strip(): (float(r[-4]), float(r[-3]), [float(c) for c in r[2:-4]]) for r in rows[1:]
            if not r[1].strip().startswith("**")}
    total = next(r for r in rows if r[1].strip() == "**all**")
    assert set(body) == {"grad_input", "ig", "blur_ig", "guided_ig", "sig", "ig2", "agi", "samp", "eig", "mig",
                         "ma_gig"}
    assert abs(sum(p for p, _, _ in body.values()) - float(total[-4].strip(" *"))) < 0.01 * float(total[-4].strip(" *"))
    for pflop, _, per_model in body.values():  # the models' columns add up to the grid's
        assert abs(sum(per_model) - pflop) <= 0.01 * pflop
    pflop, hours, _ = body["ig"]
    assert abs(hours - pflop * 1e15 / (100e12 * 3600)) < 0.01 * hours  # hours at the given peak
    assert body["ma_gig"][0] > body["eig"][0] > body["ig"][0]  # decoder backward > decoder forward > classifier


def test_vit_b16_unit_costs_at_224():
    """torchvision ViT-B/16 at 224 on the meta device: 17.56 G multiply-adds per forward (its published count),
    attention included; the forward+backward to the input about twice that."""
    unit = flops.unit_flops("vit_b16", 224, "none")
    assert abs(unit["classifier_f"] / 2e9 - 17.56) < 0.05
    assert 1.9 < unit["classifier_fb"] / unit["classifier_f"] < 2.2
