"""ROAR with retraining: the library pieces (attribution.roar) on hand cases and a linear model whose answer is
known, and the harness (benchmarks.roar) end to end on a few embedded MNIST digits, resumed, and its CIFAR-10
experiment composed into its job list without running it."""
import math

import pytest
import torch

from attribution.errors import ConfigError
from attribution.roar import blur_map, fit, n_removed, predict, removal_order, remove_top, tie_order


# ------------------------------------------------------------------------------------------------ remove_top
def test_remove_top_hand_case():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2).repeat(1, 2, 1, 1)
    x[:, 1] += 10  # second channel 11..14
    # saliency sum_c |A|: (0,1) 0.9 > (1,0) 0.5 > (0,0) 0.1 > (1,1) 0
    a = torch.tensor([[0.1, -0.6], [0.25, 0.0]]).view(1, 1, 2, 2).repeat(1, 2, 1, 1)
    a[:, 1, 0, 1] = -0.3
    a[:, 1, 1, 0] = 0.25
    out = remove_top(x, a, 0.5, fill="channel_mean", mean=[7.0, 70.0])  # 4 - int(4 * 0.5) = 2 pixels go
    assert out[0, 0].tolist() == [[1.0, 7.0], [7.0, 4.0]]
    assert out[0, 1].tolist() == [[11.0, 70.0], [70.0, 14.0]]
    kept = remove_top(x, a, 0.5, fill="kept_mean")  # mean of the kept values 1, 4, 11, 14 = 7.5
    assert kept[0, 0].tolist() == [[1.0, 7.5], [7.5, 4.0]]
    assert remove_top(x, a, 0.25, fill=0.0)[0, 0].tolist() == [[1.0, 0.0], [3.0, 4.0]]


def test_removed_counts_are_the_sig_authors_keep_counts():
    assert [n_removed(1024, r) for r in (0.1, 0.3, 0.5, 0.7, 0.9)] == [1024 - k for k in (921, 716, 512, 307, 102)]


def test_ties_go_in_the_seeded_order_and_the_sort_is_stable():
    a = torch.zeros(3, 1, 4, 4)
    a[1, 0, 2, 2] = 5.0
    order = removal_order(a, tie_seed=3)
    assert order[0].tolist() == tie_order(16, 3).tolist()          # all tied: the fixed permutation
    assert order[2].tolist() == order[0].tolist()                  # the same for every image
    assert order[1, 0] == 10 and sorted(order[1].tolist()) == list(range(16))
    assert removal_order(a, tie_seed=4)[0].tolist() != order[0].tolist()


def test_bad_input_fails_naming_the_key():
    x, a = torch.zeros(1, 2, 3, 3), torch.ones(1, 2, 3, 3)
    with pytest.raises(ConfigError, match="mean"):
        remove_top(x, a, 0.5)
    with pytest.raises(ConfigError, match="2 channels"):
        remove_top(x, a, 0.5, mean=[0.0])
    with pytest.raises(ConfigError, match="ratio"):
        remove_top(x, a, 1.5, mean=[0.0, 0.0])


def test_blur_control_spreads_a_point_map():
    a = torch.zeros(1, 3, 9, 9)
    a[0, :, 4, 4] = -1.0
    b = blur_map(a, 1.0)
    assert b.shape == (1, 1, 9, 9)
    assert float(b.sum()) == pytest.approx(3.0, rel=1e-4)  # the saliency's mass, kept inside the image
    assert float(b[0, 0, 4, 4]) < 3.0 and float(b[0, 0, 4, 5]) > 0.1


# ------------------------------------------------------------------------------------------------ known answer
D, K = 20, 4  # 20 features, the label is the sign of the sum of the first 4


def _linear_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 1, D, generator=g)
    return x, (x[..., :K].sum((1, 2, 3)) > 0).long()


def _roar_accuracy(attr_train, attr_test, x_tr, y_tr, x_te, y_te, ratio):
    from attribution.roar import channel_means, correct

    mean = channel_means(x_tr)
    xr, xe = remove_top(x_tr, attr_train, ratio, mean=mean), remove_top(x_te, attr_test, ratio, mean=mean)
    model, _ = fit(lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(D, 2)), xr, y_tr, epochs=15,
                   batch_size=100, lr=0.05, seed=0)
    return float(correct(model, xe, y_te).float().mean())


def _sign_agreement(kept: int) -> float:
    """P(sign of the sum of ``kept`` of the K standard normals = sign of all K): Sheppard's formula
    1/2 + arcsin(rho)/pi with rho = sqrt(kept/K) the correlation of the two sums."""
    return 0.5 + math.asin(math.sqrt(kept / K)) / math.pi


def test_linear_model_known_answer():
    """The exact map of a linear classifier (its weights: 1 on the K label features, 0 elsewhere) removes the label
    features first: at r = 0.1 two of the four go (accuracy 1/2 + arcsin(sqrt(1/2))/pi = 0.75), from r = 0.3 (six
    features removed) all of them (chance, 0.5). A random map removes j ~ Hypergeometric(20, 4, 6) label features at
    r = 0.3: the expected accuracy is sum_j P(j) (1/2 + arcsin(sqrt((4-j)/4))/pi) = 0.834."""
    x_tr, y_tr = _linear_data(4000, 0)
    x_te, y_te = _linear_data(4000, 1)
    w = torch.zeros(1, 1, 1, D)
    w[..., :K] = 1.0
    exact = lambda x: w.expand_as(x)  # noqa: E731 - the gradient of the decision function, every image
    assert _roar_accuracy(exact(x_tr), exact(x_te), x_tr, y_tr, x_te, y_te, 0.1) == pytest.approx(
        _sign_agreement(2), abs=0.03)
    for r in (0.3, 0.5):
        assert _roar_accuracy(exact(x_tr), exact(x_te), x_tr, y_tr, x_te, y_te, r) == pytest.approx(0.5, abs=0.03)
    m = n_removed(D, 0.3)
    assert m == 6
    p = [math.comb(K, j) * math.comb(D - K, m - j) / math.comb(D, m) for j in range(K + 1)]
    expected = sum(pj * _sign_agreement(K - j) for j, pj in enumerate(p))
    assert expected == pytest.approx(0.834, abs=1e-3)
    g = torch.Generator().manual_seed(5)
    rnd_tr, rnd_te = torch.randn(x_tr.shape, generator=g), torch.randn(x_te.shape, generator=g)
    assert _roar_accuracy(rnd_tr, rnd_te, x_tr, y_tr, x_te, y_te, 0.3) == pytest.approx(expected, abs=0.03)


def test_fit_is_seeded():
    x, y = _linear_data(300, 2)
    make = lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(D, 2))  # noqa: E731
    a, _ = fit(make, x, y, epochs=2, batch_size=32, seed=7)
    b, _ = fit(make, x, y, epochs=2, batch_size=32, seed=7)
    c, _ = fit(make, x, y, epochs=2, batch_size=32, seed=8)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a[1].weight, c[1].weight)
    assert predict(a, x).shape == (300,)


# ------------------------------------------------------------------------------------------------ the harness
def test_cifar10_experiment_composes_into_one_job_per_map_and_ratio():
    from benchmarks.roar import plan as P
    from benchmarks.run.config import compose_config, sweep_params

    axes = sweep_params(["experiment=roar_cifar10"])
    cfg = compose_config(["experiment=roar_cifar10"])
    r = P.check(cfg)
    assert set(axes) == {"roar.method", "roar.ratio"}
    assert axes["roar.method"] == P.all_maps(r)          # every map, the random and blur controls included
    assert [float(v) for v in axes["roar.ratio"]] == [0.1, 0.3, 0.5, 0.7, 0.9]
    assert {"random", "ig+blur"} <= set(axes["roar.method"])
    assert len(axes["roar.method"]) * len(axes["roar.ratio"]) == len(P.jobs(r)) == 14 * 5
    assert (r["base"]["epochs"], r["retrain"]["epochs"], r["base"]["optimizer"], r["retrain"]["lr"]) == (
        200, 100, "sgd", 3e-4)
    one = compose_config(["experiment=roar_cifar10", "roar.method=ig+blur", "roar.ratio=0.7"])
    assert P.jobs(P.check(one)) == [P.Job("ig+blur", 0.7, 0)]


def test_bad_roar_keys_fail_before_work():
    from benchmarks.roar import plan as P
    from benchmarks.run.config import compose_config

    cfg = compose_config(["experiment=roar_mnist"])
    for key, value, hint in (("ratios", [0.0, 0.5], "roar.ratios"), ("methods", ["nope"], "roar.methods"),
                             ("blur", ["sig2"], "roar.blur"), ("method", "sig+blur", "roar.method")):
        bad = {**cfg, "roar": {**cfg["roar"], key: value}}
        with pytest.raises(ConfigError, match=hint.replace(".", r"\.")):
            P.check(bad)


def test_mnist_end_to_end_resumes_without_work(embedded_cache, tmp_path):
    import pandas as pd

    from benchmarks.io.store import load_store
    from benchmarks.roar import run_roar
    from benchmarks.run.config import compose_config

    ov = ["experiment=roar_mnist", f"out_dir={tmp_path}", "roar.methods=[grad_input,random]", "roar.blur=[grad_input]",
          "roar.ratios=[0.5]", "roar.train_size=64", "roar.test_size=24", "roar.retrain.epochs=1",
          "roar.retrain.batch_size=16", "batch_size=32", "device=cpu"]
    first = run_roar(compose_config([*ov, "roar.method=random"]), write_tables=False)
    assert first["trained"] == 2                          # one per fill (channel_mean, kept_mean)
    full = run_roar(compose_config(ov))
    assert (full["trained"], full["skipped"]) == (5, 2)   # grad_input and its blur control per fill, r = 0 once
    again = run_roar(compose_config(ov))
    assert (again["trained"], again["skipped"]) == (0, 7)
    df = load_store(tmp_path / "roar")
    assert len(df) == 7 * 24 and set(df["roar.correct"]) <= {0.0, 1.0}
    assert sorted(df["method"].unique()) == ["grad_input", "grad_input+blur", "none", "random"]
    assert set(df.groupby("method")["roar.ratio"].first()) == {0.0, 0.5}
    table = pd.read_csv(tmp_path / "roar" / "roar.csv")
    assert len(table) == 2 * 4 and set(table["fill"]) == {"channel_mean", "kept_mean"}  # r = 0 under each fill
    assert (tmp_path / "roar" / "roar.md").read_text().count("the random map ranks") == 2


def test_preact_resnet18_is_the_cifar_variant():
    from attribution.preact_resnet import preact_resnet18

    full = preact_resnet18()
    assert sum(p.numel() for p in full.parameters()) == 11_171_146  # the standard CIFAR PreActResNet-18
    small = preact_resnet18(num_classes=3, in_chans=1, width=4).eval()
    assert small(torch.zeros(2, 1, 32, 32)).shape == (2, 3)


def test_trained_base_model_path_on_a_saved_three_channel_dataset(tmp_path):
    """roar_cifar10's route (base model trained here, PreActResNet-18, 3 channels) on a tiny saved dataset: the
    base model is trained once and reused by a later job."""
    import datasets
    import numpy as np

    from benchmarks.roar import run_roar
    from benchmarks.run.config import compose_config

    rng = np.random.default_rng(0)
    feats = datasets.Features({"img": datasets.Image(),
                               "label": datasets.ClassLabel(names=[str(i) for i in range(10)])})

    def part(n):
        return datasets.Dataset.from_dict({"img": [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
                                                   for _ in range(n)], "label": [i % 10 for i in range(n)]},
                                          features=feats)

    datasets.DatasetDict({"train": part(32), "test": part(10)}).save_to_disk(str(tmp_path / "data"))
    ov = ["experiment=roar_cifar10", f"dataset.source={tmp_path / 'data'}", "device=cpu", f"out_dir={tmp_path}",
          "roar.methods=[grad_input,random]", "roar.blur=[]", "roar.ratios=[0.5,0.9]", "roar.base.epochs=1",
          "roar.base.batch_size=16", "roar.retrain.epochs=1", "roar.retrain.batch_size=16",
          "+roar.model_kwargs.width=4", "batch_size=16"]
    assert run_roar(compose_config([*ov, "roar.method=grad_input", "roar.ratio=0.5"]), False)["trained"] == 1
    (base,) = (tmp_path / "roar" / "base").glob("*.pt")
    stamp = base.stat().st_mtime_ns
    assert run_roar(compose_config([*ov, "roar.method=random", "roar.ratio=0.9"]), False)["trained"] == 1
    assert base.stat().st_mtime_ns == stamp
    assert torch.load(base, weights_only=True)["state_dict"]["conv1.weight"].shape == (4, 3, 3, 3)
