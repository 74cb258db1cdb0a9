"""Every score the runner stores comes from the float32 attribution: on the embedded photos (EfficientNet-Lite0),
for every method of the photos suite, the runner's per-image scores equal a direct ``build_metric(...)(model, x,
attr, target)`` call on the same images and settings. With the space-saving float16 cache this fails (rounding
reorders near-tied pixels), which is why float16 is an option that says it changes scores."""
from __future__ import annotations

import math

import pytest
import torch

import attribution
from benchmarks import run as runner
from benchmarks.io.store import load_store
from benchmarks.run.config import compose_config

PHOTOS = ["experiment=demo", "dataset=photos", "model=efficientnet_lite0", "~vae", "metrics=core",
          "metrics.insertion_deletion.step=3136", "method_settings.samp.step_size=3136", "progress=false",
          "write_tables=false", "device=cpu", "+metrics.pic.enabled=false"]
METHODS = [m for m in attribution.available_methods() if not attribution.method_info(m).needs_vae]


def direct_scores(cfg, overrides):
    """The same setup as the runner's, then the library called directly on the stored images."""
    setup = runner.build(runner.plan(cfg, overrides))
    n = cfg.get("max_images") or len(setup.dataset.ids)
    samples = [setup.dataset[k] for k in range(n)]
    norm = attribution.engine.Normalizer(setup.classifier.mean, setup.classifier.std)
    x = norm.normalize(torch.stack([s.image.float() for s in samples]))
    y = torch.tensor([int(s.label) for s in samples])
    model = setup.classifier.model
    torch.manual_seed(int(cfg.get("seed") or 0))
    attr = setup.method(model, x, y)
    out = {}
    for col, metric in setup.metrics.items():
        for key, v in metric(model, x, attr, y).items():
            if v.dim() == 1:
                out[f"{col}.{key}"] = dict(zip([str(s.id) for s in samples], v.tolist()))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", METHODS)
def test_runner_scores_equal_a_direct_metric_call_on_the_photos(name, tmp_path):
    steps = 16 if name == "ig" else 4  # IG at 16 steps on the six photos: where a float16 round trip moves scores
    images = 6 if name == "ig" else 2
    ov = [*PHOTOS, f"method={name}", f"out_dir={tmp_path / 'out'}", "batch_size=6", f"max_images={images}",
          *([f"method.n_steps={steps}"] if "n_steps" in attribution.method_options(name) else []),
          "method_settings.ig2.steps=4", "method_settings.agi.max_iter=3"]
    cfg = compose_config(ov)
    runner.run(cfg, overrides=ov, finalize_outputs=False)
    rows = load_store(tmp_path / "out").set_index("image_id")
    assert len(rows) == images and (rows.status == "ok").all()
    want = direct_scores(cfg, ov)
    assert want
    for col, per_image in want.items():
        for image_id, value in per_image.items():
            got = float(rows.loc[image_id, col])
            assert (math.isnan(got) and math.isnan(value)) or got == pytest.approx(value, rel=1e-6, abs=1e-9), (
                name, col, image_id, got, value)
