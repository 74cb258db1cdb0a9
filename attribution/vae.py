"""VAEs for the latent-path methods (MA-GIG, EIG, Manifold IG): an adapter over diffusers autoencoders.

    vae = build_vae(kind="kl", source="stabilityai/sd-vae-ft-mse")         # or a local save_pretrained folder
    vae = vae.with_normalization(mean, std)                                 # the classifier's input normalisation
    z = vae.encode(x)                                                       # [B,C,H,W] normalised -> [B,c,h,w]
    x_rec = vae.decode(z)                                                   # -> [B,C,H,W] normalised, not clamped

The adapter reproduces the authors' ``TransformWrapper`` (docs/upstream_methods.md section 4):

- ``encode(x) = E(2 * undo_normalise(x) - 1)``: the VAE sees [-1, 1] images; the latent is the **posterior mean**
  (``latent_dist.mean`` of an ``AutoencoderKL``; ``AutoencoderTiny``/TAESD is deterministic, its ``latents``).
  Encoding runs without gradients.
- ``decode(z) = normalise((D(z) + 1) / 2)``, differentiable whenever autograd is on, **not clamped** to [0, 1].
- No latent scaling (no 0.18215) unless ``latent_scale`` is set: then z = scale * mean and D(z / scale).
- Channels: a 1-channel classifier with a 3-channel VAE repeats the grey channel into RGB before encoding and
  averages the decoded RGB channels (plain mean, no luminance weights); a 3-channel classifier with a 1-channel
  VAE (e.g. the embedded MNIST VAE) averages RGB before encoding and repeats the decoded grey channel.
- Image sizes must be multiples of the VAE's down-sampling factor (8 for the SD VAEs), so that D(E(x)) has x's
  size; the methods check this and say so.

Sources: a Hugging Face hub id (``subfolder`` as on the hub, e.g. ``vae``) or a local folder written by diffusers
``save_pretrained`` (a ``config.json`` plus weights; a ``subfolder`` is used when the folder has it). Offline, or
when the hub cannot be reached, :func:`build_vae` raises a :class:`ConfigError` that names the id and says how to
point ``source`` at a local copy. ``embedded:<asset>`` sources are resolved by the harness
(``benchmarks.assets.embedded.resolve_source``) before they reach this module.
"""
from __future__ import annotations

import copy
import os
from collections.abc import Sequence

import torch

from .engine.normalize import Normalizer
from .errors import ConfigError, check

KINDS = ("kl", "tiny")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_CLASS_NAMES = {"kl": "AutoencoderKL", "tiny": "AutoencoderTiny"}


def _diffusers_class(kind: str):
    import diffusers

    return getattr(diffusers, _CLASS_NAMES[kind])


class VAEAdapter:
    """Maps between the classifier's normalised input space and a diffusers VAE's latent space.

    Args:
        vae: a diffusers ``AutoencoderKL`` or ``AutoencoderTiny`` (put in eval mode, parameters frozen).
        kind: "kl" or "tiny"; inferred from the class when omitted.
        latent_scale: None (default, as the authors) or a float multiplying the latent (``"config"`` takes the
            model's ``config.scaling_factor``).
        mean, std: the classifier's normalisation (omitted = the classifier takes [0, 1] pixels). Methods set it
            from their own ``mean``/``std`` via :meth:`with_normalization`.
        name, source: for messages and provenance only.
    """

    def __init__(self, vae: torch.nn.Module, kind: str | None = None, latent_scale=None,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 name: str | None = None, source: str | None = None):
        if kind is None:
            kind = next((k for k, c in _CLASS_NAMES.items() if type(vae).__name__ == c), None)
            if kind is None:
                raise ConfigError(f"unsupported VAE class {type(vae).__name__}: use a diffusers AutoencoderKL "
                                  f"(kind='kl') or AutoencoderTiny (kind='tiny')")
        check(kind in KINDS, "vae.kind", kind, f"choose one of {list(KINDS)}")
        if latent_scale == "config":
            latent_scale = float(getattr(vae.config, "scaling_factor", 1.0))
        if latent_scale is not None:
            ok = isinstance(latent_scale, (int, float)) and not isinstance(latent_scale, bool) and latent_scale > 0
            check(ok, "vae.latent_scale", latent_scale, "null (no scaling, as the authors), a number > 0 or 'config'")
            latent_scale = float(latent_scale)
        self.vae = vae.eval().requires_grad_(False)
        self.kind = kind
        self.latent_scale = latent_scale
        self.norm = Normalizer(mean, std)
        self.name = name or type(vae).__name__
        self.source = source
        cfg = getattr(vae, "config", {})
        self.in_channels = int(_cfg_get(cfg, "in_channels", 3))
        self.out_channels = int(_cfg_get(cfg, "out_channels", 3))

    # -- configuration ----------------------------------------------------------------------------------
    def with_normalization(self, mean=None, std=None) -> VAEAdapter:
        """A copy (sharing the network) that maps from/to the given classifier normalisation."""
        other = copy.copy(self)
        other.norm = Normalizer(mean, std)
        return other

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    @property
    def encoder(self) -> torch.nn.Module:
        return self.vae.encoder

    @property
    def decoder(self) -> torch.nn.Module:
        return self.vae.decoder

    def to(self, device=None, dtype=None) -> VAEAdapter:
        """Move the network (in place) and return self."""
        kwargs = {k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None}
        if kwargs:
            self.vae.to(**kwargs)
        return self

    def on(self, device) -> VAEAdapter:
        """Self, with the network moved to ``device`` if it is elsewhere."""
        if self.device != torch.device(device):
            self.vae.to(device)
        return self

    # -- the two maps ---------------------------------------------------------------------------------
    def _convert_channels(self, pix: torch.Tensor, channels: int) -> torch.Tensor:
        """1 -> C channels by repetition, C -> 1 by the plain mean; equal counts unchanged."""
        c = pix.shape[1]
        if c == channels:
            return pix
        if c == 1:
            return pix.expand(-1, channels, -1, -1)
        if channels == 1:
            return pix.mean(1, keepdim=True)
        raise ConfigError(f"cannot convert {c} to {channels} channels between the classifier and the VAE "
                          f"'{self.name}': only 1 <-> N channel conversion is supported")

    def _channels(self) -> int:
        if self.norm.mean is not None:
            return len(self.norm.mean)
        return self.out_channels

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent posterior mean of normalised images x [B,C,H,W] -> [B,c,h,w] float32 (no gradient)."""
        pix = self.norm.denormalize(x.float())
        v = (2.0 * self._convert_channels(pix, self.in_channels) - 1.0).to(device=self.device, dtype=self.dtype)
        if self.kind == "kl":
            z = self.vae.encode(v).latent_dist.mean
        else:
            z = self.vae.encode(v).latents
        z = z.float()
        return z * self.latent_scale if self.latent_scale is not None else z

    def decode(self, z: torch.Tensor, channels: int | None = None) -> torch.Tensor:
        """Normalised image [B,C,H,W] float32 of latents z [B,c,h,w]; differentiable, not clamped.

        ``channels`` is the classifier's channel count (default: that of ``mean``/``std``, else the VAE's).
        """
        zz = z / self.latent_scale if self.latent_scale is not None else z
        y = self.vae.decode(zz.to(self.dtype), return_dict=False)[0].float()
        pix = self._convert_channels((y + 1.0) * 0.5, channels or self._channels())
        return self.norm.normalize(pix)

    def __repr__(self):
        return (f"VAEAdapter(name={self.name!r}, kind={self.kind!r}, source={self.source!r}, "
                f"latent_scale={self.latent_scale}, channels={self.in_channels})")


def _cfg_get(cfg, key, default):
    if isinstance(cfg, dict):
        return cfg.get(key, default)
    return getattr(cfg, key, default)


class VAEPassCounter:
    """Counts rows through a VAE adapter's encoder, decoder forward and decoder backward.

        with VAEPassCounter(vae) as vc:
            method(model, x, y)
        vc.encoder, vc.decoder_f, vc.decoder_b      # rows (image x path point)

    ``decoder_f`` counts every decoder forward (with or without a graph); ``decoder_b`` counts the rows whose
    gradient was propagated back into the decoder (one per backward through it).
    """

    def __init__(self, vae: VAEAdapter):
        self.vae = vae
        self.encoder = 0
        self.decoder_f = 0
        self.decoder_b = 0
        self._handles = []

    def _enc(self, module, args, output):  # after the forward, as the others: failed chunks are not counted
        self.encoder += args[0].shape[0]

    def _dec(self, module, args, output):
        out = output[0] if isinstance(output, (tuple, list)) else output
        self.decoder_f += out.shape[0]
        if torch.is_grad_enabled() and out.requires_grad:
            out.register_hook(self._dec_back)

    def _dec_back(self, grad):
        self.decoder_b += grad.shape[0]

    def as_dict(self):
        return {"encoder": self.encoder, "decoder_f": self.decoder_f, "decoder_b": self.decoder_b}

    def __enter__(self):
        self._handles = [self.vae.encoder.register_forward_hook(self._enc),
                         self.vae.decoder.register_forward_hook(self._dec)]
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles = []


# -- loading ------------------------------------------------------------------------------------------------
def _looks_like_path(source: str) -> bool:
    return (source.startswith((".", "/", "~")) or "\\" in source or source.count("/") > 1
            or os.path.isabs(source))


def _offline_hint(source: str, subfolder: str | None) -> str:
    include = f" --include '{subfolder}/*'" if subfolder else ""
    return (f"Point vae.source at a local copy instead: a folder written by diffusers `save_pretrained(DIR)` "
            f"(config.json + diffusion_pytorch_model.safetensors), e.g. made on a machine with network by "
            f"`huggingface-cli download {source}{include} --local-dir DIR`; then set vae.source=DIR"
            + (f" (keep vae.subfolder={subfolder} if DIR has that sub-folder)" if subfolder else "") + ".")


def build_vae(kind: str = "kl", source: str | None = None, subfolder: str | None = None, latent_scale=None,
              dtype: str = "float32", device=None, name: str | None = None) -> VAEAdapter:
    """Load a diffusers VAE and wrap it in a :class:`VAEAdapter` (keywords = keys of ``configs/vae/<name>.yaml``).

    Args:
        kind: "kl" (``AutoencoderKL``: the Stable Diffusion 1.x/2.x VAEs, sd-vae-ft-mse, local KL VAEs) or
            "tiny" (``AutoencoderTiny``: TAESD).
        source: hub id (e.g. "stabilityai/sd-vae-ft-mse") or local ``save_pretrained`` folder.
        subfolder: sub-folder of the repository holding the VAE (e.g. "vae" for a full SD pipeline repo).
        latent_scale: None = no latent scaling (the authors); a float, or "config" for ``config.scaling_factor``.
        dtype: "float32" (default, the authors), "float16" or "bfloat16" for the VAE weights.
        device: where to put the network (None: stays on the CPU; the methods move it to the input's device).
        name: a label for messages and provenance (e.g. "sd2").
    """
    check(kind in KINDS, "vae.kind", kind, f"choose one of {list(KINDS)}")
    check(dtype in DTYPES, "vae.dtype", dtype, f"choose one of {list(DTYPES)}")
    if not isinstance(source, str) or not source:
        raise ConfigError(f"invalid vae.source={source!r}: a Hugging Face hub id (e.g. 'stabilityai/sd-vae-ft-mse') "
                          f"or a local folder written by diffusers save_pretrained")
    if source.startswith("embedded:"):
        raise ConfigError(f"vae.source={source!r} is an embedded asset: resolve it to a local folder first with "
                          f"benchmarks.assets.embedded.resolve_source({source!r}) (the runner does this), then "
                          f"pass that folder as source")
    cls = _diffusers_class(kind)
    torch_dtype = DTYPES[dtype]
    path = os.path.expanduser(source)
    if os.path.isdir(path):
        sub = subfolder if subfolder and os.path.isdir(os.path.join(path, subfolder)) else None
        if sub is None and not os.path.isfile(os.path.join(path, "config.json")):
            raise ConfigError(f"vae.source={source!r} is a folder without a diffusers config.json"
                              + (f" or a '{subfolder}' sub-folder" if subfolder else "")
                              + ": give the folder written by save_pretrained")
        try:
            vae = cls.from_pretrained(path, subfolder=sub, torch_dtype=torch_dtype)
        except Exception as err:  # re-raised with the folder and the kind named
            raise ConfigError(f"could not load a diffusers {cls.__name__} (vae.kind={kind!r}) from the local folder "
                              f"{source!r}: {type(err).__name__}: {err}") from err
    elif _looks_like_path(source):
        raise ConfigError(f"vae.source={source!r}: no such local folder. Give an existing folder written by diffusers "
                          f"save_pretrained, or a Hugging Face hub id such as 'stabilityai/sd-vae-ft-mse'")
    else:
        try:
            vae = cls.from_pretrained(source, subfolder=subfolder, torch_dtype=torch_dtype)
        except Exception as err:  # offline, unreachable hub, missing repo: all told the same way
            offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")
            why = "HF_HUB_OFFLINE is set and no cached copy exists" if offline else \
                "the hub could not be reached or has no such VAE"
            where = f" (subfolder '{subfolder}')" if subfolder else ""
            raise ConfigError(f"could not load the VAE '{source}'{where}"
                              + f" from the Hugging Face hub ({why}; {type(err).__name__}: {str(err)[:300]}). "
                              + _offline_hint(source, subfolder)) from err
    adapter = VAEAdapter(vae, kind=kind, latent_scale=latent_scale, name=name or source, source=source)
    if device is not None:
        adapter.to(device)
    return adapter


def as_vae(vae, mean=None, std=None) -> VAEAdapter | None:
    """Coerce what a method got as ``vae=`` into an adapter with the method's normalisation.

    Accepts a :class:`VAEAdapter`, a diffusers ``AutoencoderKL``/``AutoencoderTiny`` module, or a mapping of
    :func:`build_vae` keywords (a ``configs/vae/*.yaml`` group). None stays None.
    """
    if vae is None:
        return None
    if isinstance(vae, VAEAdapter):
        return vae.with_normalization(mean, std)
    if isinstance(vae, torch.nn.Module):
        return VAEAdapter(vae, mean=mean, std=std)
    if hasattr(vae, "keys"):
        return build_vae(**dict(vae)).with_normalization(mean, std)
    raise ConfigError(f"invalid vae={type(vae).__name__}: a VAEAdapter (attribution.vae.build_vae), a diffusers "
                      f"AutoencoderKL/AutoencoderTiny, or a mapping of build_vae keywords")


__all__ = ["VAEAdapter", "VAEPassCounter", "build_vae", "as_vae", "KINDS"]
