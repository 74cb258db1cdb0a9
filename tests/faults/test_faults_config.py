"""Typos and invalid values: rejected before any work (no data or weights loaded, nothing written to the store),
with a message naming the key and the allowed values."""
from __future__ import annotations

import pytest
import torch
from fault_helpers import add_configs, base_overrides, compose, run_inproc, write_conf
from hydra.errors import MissingConfigException

from benchmarks import run as runner


@pytest.fixture
def conf(tmp_path):
    return write_conf(tmp_path)


@pytest.fixture
def no_build(monkeypatch):
    """Fails the test if the runner starts loading a dataset, classifier or VAE."""
    built = []

    def refuse(kind, cfg, **extra):
        built.append(kind)
        raise AssertionError(f"{kind} was loaded before the config was rejected")

    monkeypatch.setattr(runner.planning, "_build", refuse)
    return built


# ------------------------------------------------------------------------------ unknown names of config groups
@pytest.mark.parametrize("override,group,choice", [
    ("dataset=imagenett", "dataset", "imagenet"),
    ("model=resnet_18", "model", "resnet18"),
    ("method=guidedig", "method", "guided_ig"),
    ("metrics=tabel1", "metrics", "table1"),
    ("logger=wandbb", "logger", "wandb"),
    ("experiment=tabel1", "experiment", "table1"),
    ("hydra/launcher=slurmm", "hydra/launcher", "submitit_slurm"),
])
def test_unknown_group_name_lists_the_choices(conf, tmp_path, override, group, choice):
    with pytest.raises(MissingConfigException) as e:
        compose([*base_overrides(conf, tmp_path / "out"), override])
    msg = str(e.value)
    assert f"Could not find '{group}/{override.split('=')[1]}'" in msg
    assert f"Available options in '{group}'" in msg and f"\t{choice}\n" in msg
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------- unknown names inside configs, invalid values
@pytest.mark.parametrize("overrides,pattern", [
    (["method.name=integrated_gradients"], r"unknown method 'integrated_gradients'.*Choose one of: .*\big\b"),
    (["+metrics.diffidd={}"], r"unknown metric 'diffidd'.*Did you mean 'diffid'.*Choose one of"),
    (["+metrics.diffid={fill: median}"], r"invalid fill='median': choose one of \['mean', 'zero', 'blur', 'avgpool'\]"),
    (["+metrics.diffid={ratios: [0.5, 1.5]}"], r"invalid ratios=.*\(0, 1\)"),
    (["method.n_steps=0"], r"invalid n_steps=0: an integer >= 2"),
    (["method.n_steps=-5"], r"invalid n_steps=-5: an integer >= 2"),
    (["method=guided_ig", "method.fraction=0"], r"invalid fraction=0: a number in the range \(0, 1\]"),
    (["method=guided_ig", "method.fraction=1.5"], r"invalid fraction=1.5: a number in the range \(0, 1\]"),
    (["method=sig", "method.overlap=-0.2"], r"invalid overlap=-0.2: a number in \[0, 1\]"),
    (["method=sig", "method.spectral_mode=fft"], r"invalid spectral_mode='fft': choose one of \['svd'"),
    (["method.baseline=grey"], r"invalid baseline='grey': choose one of \['black', 'mean', 'blur', 'expected'\]"),
    (["+method.n_stpes=8"], r"unknown option\(s\) \['n_stpes'\]; allowed: .*'n_steps'"),
    (["method=ma_gig"], r"method 'ma_gig' works in a VAE's latent space: choose one with vae=<name>.*taesd"),
    (["method=ma_gig", "vae=taesd", "method.fraction=2"], r"invalid fraction=2: a number in the range \(0, 1\]"),
    (["method=eig", "vae=taesd", "method.n_steps=1"], r"invalid n_steps=1"),
    (["batch_size=0"], r"invalid batch_size=0: a positive integer"),
    (["shard=2/2"], r"invalid shard='2/2'.*0 <= i < n"),
    (["target=top1"], r"invalid target='top1': choose one of \['label', 'pred'\]"),
    (["max_images=0"], r"invalid max_images=0"),
    (["device=cuda:3"], r"CUDA is not available here; use device=cpu") if not torch.cuda.is_available()
    else (["device=tpu"], r"device"),
])
def test_bad_name_or_value_fails_before_any_work(conf, tmp_path, no_build, overrides, pattern):
    out = tmp_path / "out"
    with pytest.raises((ValueError, KeyError, TypeError), match=pattern):
        run_inproc(base_overrides(conf, out, *overrides))
    assert not no_build and not (out / "store").exists()


# ------------------------------------------------------------ names and weights only the builders can check
def _tiny_timm(conf, **model):
    add_configs(conf, {"model/tt.yaml": {"name": "tt", "arch": "test_resnet", "pretrained": False,
                                         "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "input_size": 16,
                                         **model}})


def _nothing_written(out):
    return not (out / "store").exists() and not (out / "cache").exists()


@pytest.mark.filterwarnings("ignore:.*not loadable with weights_only")
@pytest.mark.parametrize("case", ["other_arch", "other_classes", "missing", "not_a_checkpoint"])
def test_checkpoint_that_does_not_match_the_model(conf, tmp_path, case):
    import timm

    ckpt = tmp_path / "weights.pt"
    if case == "other_arch":
        torch.save(timm.create_model("test_efficientnet", num_classes=4).state_dict(), ckpt)
        pattern = r"model.checkpoint=.* does not match the model"
    elif case == "other_classes":  # a 3-class head for a 4-class dataset
        torch.save({"model_state_dict": timm.create_model("test_resnet", num_classes=3).state_dict()}, ckpt)
        pattern = r"3 outputs but dataset=tiny has 4 classes.*model.checkpoint"
    elif case == "missing":
        ckpt = tmp_path / "no_such_weights.pt"
        pattern = r"model.checkpoint=.*no_such_weights.pt' does not exist"
    else:
        ckpt.write_bytes(b"\x00" * 64)
        pattern = r"model.checkpoint=.* is not a readable torch checkpoint"
    _tiny_timm(conf, checkpoint=str(ckpt))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=pattern):
        run_inproc([*base_overrides(conf, out), "model=tt"])
    assert _nothing_written(out)


@pytest.mark.parametrize("files,override,pattern", [
    ({"dataset/typo.yaml": {"name": "imagefolder", "source": "."}}, "dataset=typo",
     r"unknown dataset 'imagefolder'.*Did you mean 'image_folder'"),
    ({"model/typo.yaml": {"name": "r", "arch": "resnet181", "pretrained": False, "mean": [0.5] * 3,
                          "std": [0.5] * 3, "input_size": 16}}, "model=typo",
     r"invalid model.arch='resnet181': timm has no such model"),
    ({"model/typo.yaml": {"name": "r", "arch": "test_resnet", "pretrained": False, "input_size": 16}},
     "model=typo", r"model.mean is required"),
])
def test_typos_inside_dataset_and_model_configs(conf, tmp_path, files, override, pattern):
    add_configs(conf, files)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=pattern):
        run_inproc([*base_overrides(conf, out), override])
    assert _nothing_written(out)


@pytest.mark.parametrize("method", ["eig", "mig", "ma_gig"])
def test_latent_methods_at_their_defaults_pass_the_checks_without_a_vae_loaded(conf, tmp_path, no_build, method):
    """The values of a VAE method are checked against a stand-in VAE: valid configs must still pass."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(compose([*base_overrides(conf, tmp_path / "out"), f"method={method}",
                                          "vae=taesd"]), resolve=True)
    setup = runner.plan({k: v for k, v in cfg.items() if k != "hydra"})
    assert setup.needs_vae and setup.method_name == method and not no_build
