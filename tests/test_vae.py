"""The VAE adapter over diffusers autoencoders: the authors' maps, loading from local folders and the hub, configs."""
import inspect
from pathlib import Path

import pytest
import torch
import yaml
from diffusers import AutoencoderKL, AutoencoderTiny
from helpers.models import MEAN, STD

from attribution import ConfigError
from attribution.vae import VAEAdapter, VAEPassCounter, as_vae, build_vae

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
M = torch.tensor(MEAN).view(1, 3, 1, 1)
S = torch.tensor(STD).view(1, 3, 1, 1)


def tiny_kl(channels=3, seed=0):
    torch.manual_seed(seed)
    return AutoencoderKL(in_channels=channels, out_channels=channels, down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                         latent_channels=4, norm_num_groups=8).eval()


def tiny_taesd(seed=0):
    torch.manual_seed(seed)
    return AutoencoderTiny(encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
                           num_encoder_blocks=(1, 1), num_decoder_blocks=(1, 1), latent_channels=4).eval()


@pytest.fixture
def pix():
    return torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))


def test_encode_is_posterior_mean_of_minus_one_one_image(pix):
    kl = tiny_kl()
    vae = VAEAdapter(kl, mean=MEAN, std=STD)
    x = (pix - M) / S
    z = vae.encode(x)
    with torch.no_grad():
        ref = kl.encode(2 * pix - 1).latent_dist.mean
    assert z.shape == (2, 4, 8, 8) and not z.requires_grad
    assert torch.allclose(z, ref, atol=1e-5)


def test_decode_maps_back_to_normalised_space_without_clamping():
    kl = tiny_kl()
    vae = VAEAdapter(kl, mean=MEAN, std=STD)
    z = 5 * torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = kl.decode(z).sample
    out = vae.decode(z)
    assert torch.allclose(out, ((y + 1) / 2 - M) / S, atol=1e-5)
    # differentiable when z requires grad
    zr = z.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(vae.decode(zr).sum(), zr)
    assert g.abs().sum() > 0
    # no clamping: a decoder whose output leaves [-1, 1] stays outside the pixel range
    with torch.no_grad():
        kl.decoder.conv_out.bias.fill_(3.0)
    out = vae.decode(z)
    assert (out > (1 - M) / S).any()


def test_latent_scale(pix):
    kl = tiny_kl()
    plain, scaled = VAEAdapter(kl), VAEAdapter(kl, latent_scale=0.18215)
    z0, z1 = plain.encode(pix), scaled.encode(pix)
    assert torch.allclose(z1, 0.18215 * z0, atol=1e-6)
    assert torch.allclose(plain.decode(z0), scaled.decode(z1), atol=1e-5)
    assert VAEAdapter(kl, latent_scale="config").latent_scale == pytest.approx(kl.config.scaling_factor)
    with pytest.raises(ConfigError, match="latent_scale"):
        VAEAdapter(kl, latent_scale=-1)


def test_tiny_autoencoder_maps(pix):
    ae = tiny_taesd()
    vae = VAEAdapter(ae)
    assert vae.kind == "tiny"
    z = vae.encode(pix)
    with torch.no_grad():
        assert torch.allclose(z, ae.encode(2 * pix - 1).latents, atol=1e-6)
        assert torch.allclose(vae.decode(z), (ae.decode(z).sample + 1) / 2, atol=1e-6)


def test_channel_conversion(pix):
    grey = pix[:, :1]
    rgb_vae = VAEAdapter(tiny_kl(3))
    # 1-channel classifier, 3-channel VAE: repeat to encode, average the decoded channels
    assert torch.allclose(rgb_vae.with_normalization((0.5,), (0.5,)).encode((grey - 0.5) / 0.5),
                          rgb_vae.encode(grey.repeat(1, 3, 1, 1)), atol=1e-6)
    z = rgb_vae.encode(pix)
    one = rgb_vae.decode(z, channels=1)
    assert one.shape == (2, 1, 16, 16) and torch.allclose(one, rgb_vae.decode(z).mean(1, keepdim=True), atol=1e-6)
    # 3-channel classifier, 1-channel VAE: average to encode, repeat the decoded channel
    grey_vae = VAEAdapter(tiny_kl(1))
    assert torch.allclose(grey_vae.encode(pix), grey_vae.encode(pix.mean(1, keepdim=True)), atol=1e-6)
    z1 = grey_vae.encode(pix)
    three = grey_vae.with_normalization(MEAN, STD).decode(z1)
    assert three.shape == (2, 3, 16, 16)
    assert torch.allclose(three * S + M, (grey_vae.decode(z1, channels=1)).expand(-1, 3, -1, -1), atol=1e-6)


def test_build_from_local_folders(tmp_path, pix):
    kl, ae = tiny_kl(seed=4), tiny_taesd(seed=5)
    kl.save_pretrained(tmp_path / "repo" / "vae")
    ae.save_pretrained(tmp_path / "taesd")
    ref = VAEAdapter(kl).encode(pix)
    repo = tmp_path / "repo"
    for source, sub in [(repo, "vae"), (repo / "vae", "vae"), (repo / "vae", None)]:
        vae = build_vae(kind="kl", source=str(source), subfolder=sub, name="local")
        assert vae.kind == "kl" and vae.name == "local"
        assert torch.allclose(vae.encode(pix), ref, atol=1e-6)
        assert not any(p.requires_grad for p in vae.vae.parameters()) and not vae.vae.training
    tiny = build_vae(kind="tiny", source=str(tmp_path / "taesd"))
    assert torch.allclose(tiny.encode(pix), VAEAdapter(ae).encode(pix), atol=1e-6)
    half = build_vae(kind="kl", source=str(tmp_path / "repo"), subfolder="vae", dtype="bfloat16")
    z = half.encode(pix)
    assert half.dtype == torch.bfloat16 and z.dtype == torch.float32 and half.decode(z).dtype == torch.float32
    # a mapping of build_vae keywords (a vae config group) and a bare diffusers module are accepted by methods
    assert isinstance(as_vae({"kind": "kl", "source": str(tmp_path / "repo"), "subfolder": "vae"}), VAEAdapter)
    assert as_vae(kl, MEAN, STD).norm.mean == tuple(MEAN)


def test_offline_hub_id_fails_with_a_clear_message(monkeypatch):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True, raising=False)
    with pytest.raises(ConfigError) as err:
        build_vae(kind="kl", source="attribution-bench-tests/no-such-vae", subfolder="vae")
    msg = str(err.value)
    assert "attribution-bench-tests/no-such-vae" in msg and "Hugging Face hub" in msg
    assert "vae.source" in msg and "save_pretrained" in msg and "--include 'vae/*'" in msg


@pytest.mark.parametrize("kwargs,match", [
    (dict(source="./no/such/folder"), "no such local folder"),
    (dict(source="embedded:mnist_vae"), "resolve_source"),
    (dict(source=None), "vae.source"),
    (dict(kind="vq", source="x/y"), "vae.kind"),
    (dict(dtype="float64", source="x/y"), "vae.dtype"),
])
def test_bad_sources_and_values(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        build_vae(**kwargs)


def test_folder_without_config(tmp_path):
    with pytest.raises(ConfigError, match="config.json"):
        build_vae(source=str(tmp_path))


def test_vae_configs_are_build_vae_keywords():
    allowed = set(inspect.signature(build_vae).parameters)
    files = sorted((CONFIGS / "vae").glob("*.yaml"))
    assert {f.stem for f in files} >= {"sd2", "sd1", "sd_ft_mse", "taesd", "mnist_kl"}
    for f in files:
        cfg = yaml.safe_load(f.read_text())
        assert set(cfg) <= allowed, f.name
        assert cfg["kind"] in ("kl", "tiny") and cfg["dtype"] == "float32" and cfg["latent_scale"] is None
    sd2 = yaml.safe_load((CONFIGS / "vae" / "sd2.yaml").read_text())
    assert (sd2["source"], sd2["subfolder"]) == ("lzyvegetable/stable-diffusion-2-1", "vae")  # the authors' default


def test_pass_counter(pix):
    vae = VAEAdapter(tiny_kl())
    with VAEPassCounter(vae) as vc:
        z = vae.encode(pix)
        with torch.no_grad():
            vae.decode(z)
        zr = z.clone().requires_grad_(True)
        torch.autograd.grad(vae.decode(zr).sum(), zr)
    assert vc.as_dict() == {"encoder": 2, "decoder_f": 4, "decoder_b": 2}
    vae.decode(z)  # hooks removed
    assert vc.decoder_f == 4
