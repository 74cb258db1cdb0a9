"""Names and order of the table's rows and columns: methods (the registry's paper order, display and LaTeX labels:
:func:`attribution.method_info`), models and datasets (canonical names through :mod:`benchmarks.report.published`)."""
from __future__ import annotations

import re

from . import published as pub

#: where a method the registry does not know (rows of a store written by another version) sorts: with the new ones
UNREGISTERED_ORDER = 50.0


def method_info(name: str):
    """The registry's facts about method ``name`` (:func:`attribution.method_info`), or None if it is not registered."""
    import attribution

    return attribution.method_info(name) if name in attribution.available_methods() else None


def paper_methods() -> list[str]:
    """The registered methods the papers compare, in their row order (``order`` below the new methods')."""
    import attribution

    infos = [attribution.method_info(m) for m in attribution.available_methods()]
    return [i.name for i in sorted(infos, key=lambda i: (i.order, i.name)) if i.order < UNREGISTERED_ORDER]


MODEL_ORDER = ["vit_b16", "resnet18", "vgg16", "inception_v1"]  # the ViT first, as the SIG authors run it
MODEL_DISPLAY = {"vit_b16": "ViT-B/16", "resnet18": "R18", "vgg16": "VGG16", "inception_v1": "IncV1"}
DATASET_ORDER = ["imagenet", "pet", "flowers102"]


def _order(values, preferred, last=()):
    vals = list(dict.fromkeys(values))
    head = [v for v in preferred if v in vals]
    tail = [v for v in last if v in vals]
    mid = sorted(v for v in vals if v not in head and v not in tail)
    return head + mid + tail


def method_order(methods):
    """Methods in the registry's ``order`` (the papers' rows, then new methods alphabetically, then random); a
    variant ("guided_ig+idgi") right after its method, its modifiers in :data:`attribution.modifiers.TOKENS` order."""
    from attribution.modifiers import split_variant, token_order

    def key(m):
        base, tokens = split_variant(str(m))
        info = method_info(base)
        return (info.order if info is not None else UNREGISTERED_ORDER, base, token_order(tokens), str(m))

    return sorted(dict.fromkeys(methods), key=key)


def model_order(models):
    canon = {m: pub.canonical_model(m) for m in dict.fromkeys(models)}
    pref = [m for c in MODEL_ORDER for m in canon if canon[m] == c]
    return _order(models, pref)


def dataset_order(datasets):
    canon = {d: pub.canonical_dataset(d) for d in dict.fromkeys(datasets)}
    pref = [d for c in DATASET_ORDER for d in canon if canon[d] == c]
    return _order(datasets, pref)


def _variant_sort_key(variants):
    """Variants (``method`` or ``method[hash]``) in paper order of their method, then by name."""
    variants = list(dict.fromkeys(variants))
    base = {v: str(v).split("[")[0] for v in variants}  # the method or variant name, without a config hash
    order = method_order(base.values())
    return sorted(variants, key=lambda v: (order.index(base[v]), v))


def display_method(variant: str, latex: bool = False) -> str:
    """A row's label: the method's display name with its modifiers ("GIG + IDGI", :func:`attribution.variant_display`)
    and, where one method has several configs in a table, its ``[hash]``."""
    import attribution
    from attribution.modifiers import split_variant, variant_label

    name, sep, rest = str(variant).partition("[")
    base, tokens = split_variant(name)
    info = method_info(base)
    if latex:
        head = info.latex if info is not None and info.latex != info.display else _tex_escape(
            info.display if info is not None else base)
        label = variant_label(head, tokens).replace("²", "$^2$") if info is not None else _tex_escape(name)
        return label + (" " + _tex_escape(sep + rest) if sep else "")
    label = attribution.variant_display(name)
    return label + (" " + sep + rest if sep else "")


def display_model(model: str) -> str:
    return MODEL_DISPLAY.get(pub.canonical_model(model), model)


def _tex_escape(s: str) -> str:
    return re.sub(r"([_&%#$])", r"\\\1", str(s))
