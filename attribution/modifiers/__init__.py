"""Modifiers: the axes along which a method composes, and the names of the variants they make.

Along the path (options of every path method, :class:`attribution.methods.base.PathMethod`): ``baseline="expected"``
(Expected Gradients), ``integration="idgi"``, and for fixed paths ``rule`` and ``spacing``. Around any method
(:func:`wrap`): ``noise`` (SmoothGrad, SmoothGrad-squared, VarGrad: :mod:`.noise`) and then ``post`` (XRAI regions:
:mod:`.xrai`)::

    attribution.build_method("guided_ig", integration="idgi")            # "GIG + IDGI"     variant guided_ig+idgi
    attribution.build_method("sig", baseline="expected", n_samples=16)    # "SIG + EG"       variant sig+eg
    attribution.build_method("ma_gig", vae=vae, noise="smoothgrad")       # "MA-GIG (SG)"    variant ma_gig+sg
    attribution.build_method("ig", rule="gausslegendre")                  # "IG (GL)"        variant ig+gausslegendre
    attribution.build_method("ig", post={"kind": "xrai"})                 # "IG + XRAI"      variant ig+xrai

A variant's name is the method's name and its modifiers' tokens joined by "+" in one fixed order (:data:`TOKENS`);
tables, the store and the cache treat it as a method of its own.
"""
from __future__ import annotations

from collections.abc import Mapping

from ..errors import ConfigError

#: token -> (label, how it attaches to the method's display name), in the order tokens appear in a variant name
TOKENS = {
    "idgi": ("IDGI", "plus"), "eg": ("EG", "plus"),
    "right": ("right", "paren"), "middle": ("middle", "paren"), "trapezoid": ("trapezoid", "paren"),
    "gausslegendre": ("GL", "paren"), "adaptive": ("adaptive", "paren"),
    "sg": ("SG", "paren"), "sg2": ("SG²", "paren"), "vg": ("VG", "paren"),
    "xrai": ("XRAI", "plus"),
}
NOISE_TOKENS = {"smoothgrad": "sg", "smoothgrad_sq": "sg2", "vargrad": "vg"}


def _spec(value, group: str) -> dict | None:
    """A modifier given as a kind name or a mapping with ``kind`` -> the mapping (None: not used)."""
    if value is None or value is False:
        return None
    if isinstance(value, str):
        return {"kind": value}
    if isinstance(value, Mapping) and value.get("kind"):
        return dict(value)
    raise ConfigError(f"invalid {group}={value!r}: a kind name or a mapping with 'kind' (e.g. {group}=smoothgrad or "
                      f"+{group}=<a config of configs/{group}/>)")


def wrap(method, noise=None, post=None):
    """``method`` under ``noise`` (``{"kind": "smoothgrad" | "smoothgrad_sq" | "vargrad", "samples", "sigma",
    "seed"}`` or a kind name) and then ``post`` (``{"kind": "xrai", **XRAI options}`` or "xrai")."""
    n, p = _spec(noise, "noise"), _spec(post, "post")
    if n is not None:
        from .noise import NoiseTunnel

        kind = n.pop("kind")
        method = NoiseTunnel(method, kind=kind, **n)
    if p is not None:
        kind = p.pop("kind")
        if kind != "xrai":
            raise ConfigError(f"invalid post.kind={kind!r}: choose one of ['xrai']")
        from .xrai import XRAI

        method = XRAI(method, **p)
    return method


def variant_tokens(options: Mapping, noise=None, post=None) -> list[str]:
    """The modifier tokens of a method built with ``options`` (and ``noise``/``post``), in :data:`TOKENS` order."""
    found = []
    if options.get("integration", "path") == "idgi":
        found.append("idgi")
    if isinstance(options.get("baseline"), str) and options.get("baseline") == "expected":
        found.append("eg")
    if options.get("rule", "left") != "left":
        found.append(str(options["rule"]))
    if options.get("spacing", "uniform") == "adaptive":
        found.append("adaptive")
    n, p = _spec(noise, "noise"), _spec(post, "post")
    if n is not None:
        found.append(NOISE_TOKENS.get(n["kind"], str(n["kind"])))
    if p is not None:
        found.append(str(p["kind"]))
    return found


def variant_name(name: str, options: Mapping, noise=None, post=None) -> str:
    """``name`` joined with its modifier tokens: "guided_ig+idgi", "sig+eg", "ig+sg", "ig" (no modifier)."""
    return "+".join([name, *variant_tokens(options, noise, post)])


def split_variant(variant: str) -> tuple[str, list[str]]:
    """"guided_ig+idgi" -> ("guided_ig", ["idgi"]); a name whose tail is not made of known tokens stays whole."""
    base, *tokens = str(variant).split("+")
    if tokens and all(t in TOKENS for t in tokens):
        return base, tokens
    return str(variant), []


def variant_label(display: str, tokens: list[str]) -> str:
    """The method's display name with its modifiers: "GIG + IDGI", "SIG + EG", "IG (SG)", "IG (GL) + XRAI"."""
    plus = [TOKENS[t][0] for t in tokens if TOKENS[t][1] == "plus" and t != "xrai"]
    paren = [TOKENS[t][0] for t in tokens if TOKENS[t][1] == "paren"]
    label = " + ".join([display, *plus])
    if paren:
        label += f" ({', '.join(paren)})"
    if "xrai" in tokens:
        label += " + XRAI"
    return label


def token_order(tokens: list[str]) -> tuple[int, ...]:
    """Sort key placing a variant after its method: by the positions of its tokens in :data:`TOKENS`."""
    pos = list(TOKENS)
    return (len(tokens), *sorted(pos.index(t) for t in tokens))


__all__ = ["TOKENS", "wrap", "variant_tokens", "variant_name", "split_variant", "variant_label", "token_order"]
