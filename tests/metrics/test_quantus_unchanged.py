"""A Quantus metric whose perturbation leaves an image unchanged (Quantus warns "perturb_func didn't cause change in
input") says so per image (``unchanged``), and the tables flag that metric's column instead of showing a result."""
import numpy as np
import pytest
import torch
from helpers.models import SmoothNet

import attribution
from attribution.metrics._compat import numpy_trapz
from attribution.metrics.quantus_adapter import QUANTUS_METRICS

quantus = pytest.importorskip("quantus")

CASES = {"quantus_pixel_flipping": {"features_in_step": 64, "perturb_baseline": "mean"},
         "quantus_faithfulness_correlation": {"nr_runs": 3, "subset_size": 16, "perturb_baseline": "mean"}}


def _data():
    g = torch.Generator().manual_seed(0)
    model = SmoothNet(channels=3).eval()
    x = torch.randn(3, 3, 16, 16, generator=g)
    x[1] = 0.7  # a flat image: replacing its pixels by its mean changes nothing
    attr = torch.randn(x.shape, generator=g)
    with torch.no_grad():
        y = model(x).argmax(-1)
    return model, x, attr, y


def _direct(name, kw, model, x, attr, y):
    """The scores of Quantus called by hand (the adapter's flags must not change them)."""
    cls, kind, _ = QUANTUS_METRICS[name]
    metric = getattr(quantus, cls)(**kw, disable_warnings=True, return_aggregate=False)
    np.random.seed(0)
    with numpy_trapz():
        scores = metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=attr.sum(1, keepdim=True).numpy(),
                        channel_first=True, device="cpu", batch_size=len(x))
        if kind == "curve":
            return [float(quantus.helpers.utils.calculate_auc(np.asarray(s))) for s in scores]
    return np.asarray(scores, dtype=float)


def test_the_image_a_perturbation_leaves_unchanged_is_marked_per_image():
    model, x, attr, y = _data()
    for name, kw in CASES.items():
        metric = attribution.build_metric(name, **kw)
        out = metric(model, x, attr, y)
        assert out["unchanged"].tolist() == [0.0, 1.0, 0.0], name
        np.testing.assert_allclose(out[name].numpy(), _direct(name, kw, model, x, attr, y), rtol=1e-5, atol=1e-6)
        alone = metric(model, x[[0, 2]], attr[[0, 2]], y[[0, 2]])
        assert alone["unchanged"].tolist() == [0.0, 0.0]
    one = attribution.build_metric("quantus_pixel_flipping", **CASES["quantus_pixel_flipping"], max_batch=1)
    assert one(model, x, attr, y)["unchanged"].tolist() == [0.0, 1.0, 0.0]  # one image per Quantus batch

