"""Names and order of the table's rows and columns: methods (paper order, display and LaTeX labels), models and
datasets (canonical names through :mod:`benchmarks.report.published`)."""
from __future__ import annotations

import re

from . import published as pub

#: methods in the papers' row order; others follow alphabetically, then ``random``
METHOD_ORDER = ["grad_input", "ig", "blur_ig", "eig", "mig", "guided_ig", "agi", "ig2", "samp", "sig", "ma_gig"]
LAST_METHODS = ["random"]
METHOD_DISPLAY = {"grad_input": "G×I", "ig": "IG", "blur_ig": "BIG", "eig": "EIG", "mig": "MIG",
                  "guided_ig": "GIG", "agi": "AGI", "ig2": "IG²", "samp": "SAMP", "sig": "SIG", "ma_gig": "MA-GIG",
                  "random": "Random"}
METHOD_LATEX = {"grad_input": r"G$\times$I", "ig2": r"IG$^2$"}
MODEL_ORDER = ["resnet18", "vgg16", "inception_v1"]
MODEL_DISPLAY = {"resnet18": "R18", "vgg16": "VGG16", "inception_v1": "IncV1"}
DATASET_ORDER = ["imagenet", "pet", "flowers102"]


def _order(values, preferred, last=()):
    vals = list(dict.fromkeys(values))
    head = [v for v in preferred if v in vals]
    tail = [v for v in last if v in vals]
    mid = sorted(v for v in vals if v not in head and v not in tail)
    return head + mid + tail


def method_order(methods):
    return _order(methods, METHOD_ORDER, LAST_METHODS)


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
    base = {v: str(v).split("[")[0] for v in variants}
    order = method_order(base.values())
    return sorted(variants, key=lambda v: (order.index(base[v]), v))


def display_method(variant: str, latex: bool = False) -> str:
    base, sep, rest = str(variant).partition("[")
    if latex:
        name = METHOD_LATEX.get(base) or _tex_escape(METHOD_DISPLAY.get(base, base))
        return name + (" " + _tex_escape(sep + rest) if sep else "")
    return METHOD_DISPLAY.get(base, base) + (" " + sep + rest if sep else "")


def display_model(model: str) -> str:
    return MODEL_DISPLAY.get(pub.canonical_model(model), model)


def _tex_escape(s: str) -> str:
    return re.sub(r"([_&%#$])", r"\\\1", str(s))
