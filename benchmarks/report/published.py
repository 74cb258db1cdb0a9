"""Published numbers as data, and the comparison of our table with them.

The numbers live in ``results/published/*.csv`` (long format, one row per (dataset, model, method, metric)
cell). They were parsed from ``docs/published.md`` by :func:`parse_published_md`; rerun
``python scripts/compare_published.py --parse <published.md>`` to regenerate them.

- ``sig_imagenet.csv``: SIG (KDD 2026) poster table "Faithfulness on ImageNet" (exact; marks = bold/underline
  as printed).
- ``magig_pet.csv``: MA-GIG (ICML 2026) partial Table 1 on Oxford-IIIT Pet (third-party transcription, not
  verified against the PDF) plus one *derived* value (MA-GIG Pet/ResNet-18 DiffID ~= IG + 0.085, from the
  PnPXAI tutorial's "+0.085 the paper reports"), marked ``kind=derived``.

Names are mapped to ours: methods through the registry (name, display name, aliases: G×I -> grad_input, BIG ->
blur_ig, GIG -> guided_ig, IG² -> ig2, ...),
models (R18/ResNet18 -> resnet18, VGG16 -> vgg16, IncV1/InceptionV1 -> inception_v1) and metrics
(DiffID -> diffid.diffid, Ins -> diffid.insertion, Del -> diffid.deletion). Dataset and model names from a
store are matched through :func:`canonical_dataset` / :func:`canonical_model`, so ``oxfordpet``, ``pet`` and
``oxford_iiit_pet`` all meet the published ``pet``.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
PUBLISHED_DIR = REPO / "results" / "published"
REFERENCE_MD = REPO / "docs" / "published.md"

COLUMNS = ["source", "dataset", "model", "method", "metric", "label", "value", "mark", "kind", "note"]



@functools.lru_cache(maxsize=1)
def method_aliases() -> dict:
    """{spelling: registered method}: each method's name, display name and ``aliases``
    (:func:`attribution.method_info`), as :func:`_key` normalises them (``G×I``, ``gradinput``, ``IG²``, ...)."""
    import attribution

    out = {}
    for name in attribution.available_methods():
        info = attribution.method_info(name)
        for spelling in (name, info.display, *info.aliases):
            out.setdefault(_key(spelling), name)
    return out


MODEL_ALIASES = {
    "r18": "resnet18", "resnet18": "resnet18", "tvresnet18": "resnet18",
    "vgg16": "vgg16", "vgg": "vgg16", "tvvgg16": "vgg16",
    "incv1": "inception_v1", "inceptionv1": "inception_v1", "inception": "inception_v1",
    "googlenet": "inception_v1", "tvgooglenet": "inception_v1",
    "vitb16": "vit_b16", "vit": "vit_b16", "vitb": "vit_b16",
}
DATASET_ALIASES = {
    "imagenet": "imagenet", "imagenet1k": "imagenet", "ilsvrc2012": "imagenet", "imagenetval": "imagenet",
    "pet": "pet", "pets": "pet", "oxfordpet": "pet", "oxfordpets": "pet", "oxfordiiitpet": "pet",
    "oxfordiiitpets": "pet",
    "flower": "flowers102", "flowers": "flowers102", "flowers102": "flowers102", "oxfordflower": "flowers102",
    "oxfordflowers": "flowers102", "oxfordflowers102": "flowers102", "oxford102flower": "flowers102",
    "oxford102flowers": "flowers102",
}
METRIC_ALIASES = {"diffid": "diffid.diffid", "ins": "diffid.insertion", "del": "diffid.deletion",
                  "insertion": "diffid.insertion", "deletion": "diffid.deletion"}

#: (source section marker in published.md, source id, dataset, output file, note)
SECTIONS = [
    ("### A.2", "magig_icml2026", "pet", "magig_pet.csv",
     "third-party transcription of the paper's Table 1, not verified against the PDF"),
    ("### A.3", "sig_kdd2026", "imagenet", "sig_imagenet.csv", "authors' KDD 2026 poster (exact)"),
]
#: values stated in prose, not in a table: (source, dataset, model, method, metric, label, value, note)
DERIVED = [
    ("magig_icml2026", "pet", "resnet18", "ma_gig", "diffid.diffid", "DiffID", 0.3790 + 0.085,
     "derived: IG 0.3790 + the +0.085 gap the PnPXAI tutorial attributes to the paper (PR #177); not a table value"),
]


def _key(s: str) -> str:
    return re.sub(r"[^0-9a-z×²\-]", "", str(s).strip().lower())


def _alnum(s: str) -> str:
    return re.sub(r"[^0-9a-z]", "", str(s).strip().lower())


def canonical_method(name: str) -> str:
    k, aliases = _key(name), method_aliases()
    return aliases.get(k, aliases.get(k.replace("-", ""), str(name)))


def canonical_model(name: str) -> str:
    base = str(name).split(".")[0]  # timm pretrained tags: resnet18.tv_in1k
    return MODEL_ALIASES.get(_alnum(base), str(name))


def canonical_dataset(name: str) -> str:
    return DATASET_ALIASES.get(_alnum(name), str(name))


def _parse_value(cell: str):
    """'.104' -> (0.104, ''); '**.342**' -> (0.342, 'best'); '_.312_' -> (0.312, 'second'); else (None, '')."""
    c = cell.strip()
    mark = ""
    if c.startswith("**") and c.endswith("**") and len(c) > 4:
        mark, c = "best", c[2:-2]
    elif c.startswith("_") and c.endswith("_") and len(c) > 2:
        mark, c = "second", c[1:-1]
    try:
        return float(c), mark
    except ValueError:
        return None, ""


def _parse_header(cell: str):
    """'R18 DiffID↑' -> ('resnet18', 'diffid.diffid', 'DiffID')."""
    toks = cell.replace("↑", "").replace("↓", "").split()
    if len(toks) != 2:
        return None
    model, metric = canonical_model(toks[0]), METRIC_ALIASES.get(toks[1].lower())
    if metric is None or model not in MODEL_ALIASES.values():
        return None
    return model, metric, toks[1]


def _tables_in(lines):
    """Yield lists of row cell lists for every Markdown table in ``lines``."""
    block = []
    for line in lines + [""]:
        if line.lstrip().startswith("|"):
            block.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif block:
            yield block
            block = []


def parse_published_md(path=REFERENCE_MD) -> dict:
    """Parse the two tables of ``published.md`` -> ``{file name: DataFrame}`` (long format, :data:`COLUMNS`)."""
    text = Path(path).read_text(encoding="utf-8")
    lines = text.splitlines()
    starts = {marker: next((i for i, ln in enumerate(lines) if ln.startswith(marker)), None)
              for marker, *_ in SECTIONS}
    out = {}
    for marker, source, dataset, fname, note in SECTIONS:
        i0 = starts[marker]
        if i0 is None:
            raise ValueError(f"section {marker!r} not found in {path}")
        i1 = next((i for i in range(i0 + 1, len(lines)) if lines[i].startswith("### ")), len(lines))
        rows = []
        for table in _tables_in(lines[i0:i1]):
            header = [_parse_header(c) for c in table[0][1:]]
            if not any(header):
                continue
            for cells in table[2:]:
                method = canonical_method(cells[0])
                for h, cell in zip(header, cells[1:]):
                    if h is None:
                        continue
                    value, mark = _parse_value(cell)
                    if value is None:
                        continue
                    rows.append(dict(source=source, dataset=dataset, model=h[0], method=method, metric=h[1],
                                     label=h[2], value=value, mark=mark, kind="table", note=note))
        for d in DERIVED:
            if d[0] == source and d[1] == dataset:
                rows.append(dict(source=d[0], dataset=d[1], model=d[2], method=d[3], metric=d[4], label=d[5],
                                 value=round(d[6], 4), mark="", kind="derived", note=d[7]))
        out[fname] = pd.DataFrame(rows, columns=COLUMNS)
    return out


def write_published_csvs(md_path=REFERENCE_MD, out_dir=PUBLISHED_DIR) -> list:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fname, frame in parse_published_md(md_path).items():
        p = out_dir / fname
        frame.to_csv(p, index=False, lineterminator="\n")
        paths.append(p)
    return paths


def read_csv(path) -> pd.DataFrame:
    """One published CSV (empty text fields stay "")."""
    df = pd.read_csv(path, keep_default_na=False, dtype={c: str for c in COLUMNS if c != "value"})
    df["value"] = df["value"].astype(float)
    return df[COLUMNS]


def load_published(directory=PUBLISHED_DIR) -> pd.DataFrame:
    """All ``*.csv`` under ``directory`` concatenated (empty frame with :data:`COLUMNS` if none)."""
    files = sorted(Path(directory).glob("*.csv"))
    if not files:
        return pd.DataFrame(columns=COLUMNS)
    df = pd.concat([read_csv(f) for f in files], ignore_index=True)
    return df


def compare_with_published(ours: pd.DataFrame, published: pd.DataFrame | None = None) -> pd.DataFrame:
    """Match our cell means with the published values.

    ``ours``: the long summary of :func:`benchmarks.report.table.summarize` (columns dataset, model, method, column,
    mean, lo, hi, n) — or any frame with those columns. Matching is on canonical (dataset, model, method) and the
    metric column. Returns columns: dataset, model, method, metric, label, ours, ours_lo, ours_hi, n, published,
    delta (= ours - published), within_ci (published inside our 95% interval), mark, kind, source, note.
    """
    if published is None:
        published = load_published()
    cols = ["dataset", "model", "method", "metric", "label", "ours", "ours_lo", "ours_hi", "n", "published",
            "delta", "within_ci", "mark", "kind", "source", "note"]
    if ours is None or len(ours) == 0 or len(published) == 0:
        return pd.DataFrame(columns=cols)
    o = ours.copy()
    if "variant" not in o.columns:
        o["variant"] = o["method"]
    o["_d"] = o["dataset"].map(canonical_dataset)
    o["_m"] = o["model"].map(canonical_model)
    o["_k"] = o["method"].map(canonical_method)
    p = published.copy()
    p["_d"] = p["dataset"].map(canonical_dataset)
    p["_m"] = p["model"].map(canonical_model)
    p["_k"] = p["method"].map(canonical_method)
    j = o.merge(p, left_on=["_d", "_m", "_k", "column"], right_on=["_d", "_m", "_k", "metric"],
                suffixes=("", "_pub"))
    if j.empty:
        return pd.DataFrame(columns=cols)
    res = pd.DataFrame({
        "dataset": j["dataset"], "model": j["model"], "method": j["variant"], "metric": j["metric"],
        "label": j["label_pub"] if "label_pub" in j else j["label"],
        "ours": j["mean"], "ours_lo": j["lo"], "ours_hi": j["hi"], "n": j["n"], "published": j["value"],
    })
    res["delta"] = res["ours"] - res["published"]
    inside = (res["published"] >= res["ours_lo"]) & (res["published"] <= res["ours_hi"])
    has_ci = res["ours_lo"].notna() & res["ours_hi"].notna()  # no interval below 10 images: neither in nor out
    res["within_ci"] = inside.astype(object).where(has_ci, None)
    for c in ["mark", "kind", "source", "note"]:
        res[c] = j[c].to_numpy()
    return res[cols].reset_index(drop=True)


def _ci(r) -> str:
    return f"[{r.ours_lo:.4f}, {r.ours_hi:.4f}]" if pd.notna(r.ours_lo) and pd.notna(r.ours_hi) else "(n too small)"


def _in_ci(v) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else ("yes" if v else "no")


def comparison_markdown(cmp: pd.DataFrame) -> str:
    """A Markdown table of :func:`compare_with_published`'s result."""
    if cmp is None or cmp.empty:
        return "_No cell of this experiment matches a published number._\n"
    lines = ["| Dataset | Model | Method | Metric | Ours [95% CI] | n | Published | Δ (ours − pub.) | in CI | kind |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in cmp.itertuples(index=False):
        pub = f"{r.published:.4f}" + {"best": " (best)", "second": " (2nd)"}.get(r.mark, "")
        lines.append(
            f"| {r.dataset} | {r.model} | {r.method} | {r.label} | {r.ours:.4f} {_ci(r)} "
            f"| {int(r.n)} | {pub} | {r.delta:+.4f} | {_in_ci(r.within_ci)} | {r.kind} |")
    notes = sorted(set(f"{s}: {n}" for s, n in zip(cmp["source"], cmp["note"]) if isinstance(n, str) and n))
    out = "\n".join(lines) + "\n"
    if notes:
        out += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    mae = float(np.nanmean(np.abs(cmp["delta"].to_numpy(dtype=float))))
    out += f"\nMean |Δ| over {len(cmp)} matched cells: {mae:.4f}.\n"
    return out
