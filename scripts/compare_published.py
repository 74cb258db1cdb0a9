#!/usr/bin/env python
"""Compare an experiment's table with the published numbers (results/published/*.csv).

    python scripts/compare_published.py results/table1              # print + write published_comparison.{md,csv}
    python scripts/compare_published.py --parse docs/published.md   # regenerate the CSVs
    python scripts/compare_published.py --check docs/published.md   # CSVs == parse(md)?

Cells are matched on (dataset, model, method, metric) after name mapping (G×I -> grad_input, BIG -> blur_ig,
R18 -> resnet18, IncV1 -> inception_v1, oxfordpet -> pet, ...); see benchmarks/report/published.py.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import published as pub  # noqa: E402
from benchmarks.report import table as tab  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", nargs="?", help="experiment folder holding store/")
    ap.add_argument("--published-dir", default=str(pub.PUBLISHED_DIR), help="folder of the published CSVs")
    ap.add_argument("--parse", metavar="MD", help="parse published.md into --published-dir and exit")
    ap.add_argument("--check", metavar="MD", help="exit 1 if the CSVs differ from what MD parses to")
    ap.add_argument("--n-boot", type=int, default=tab.N_BOOT)
    ap.add_argument("--seed", type=int, default=tab.SEED)
    a = ap.parse_args(argv)

    if a.parse:
        for p in pub.write_published_csvs(a.parse, a.published_dir):
            print(p)
        return 0
    if a.check:
        import pandas as pd

        bad = 0
        for fname, frame in pub.parse_published_md(a.check).items():
            path = Path(a.published_dir) / fname
            if not path.exists():
                print(f"missing: {path}")
                bad += 1
                continue
            have = pub.read_csv(path)
            try:
                pd.testing.assert_frame_equal(have.reset_index(drop=True), frame.reset_index(drop=True),
                                              check_dtype=False, check_exact=False, atol=1e-9)
                print(f"ok: {path} ({len(frame)} cells)")
            except AssertionError as e:
                print(f"differs: {path}\n{e}")
                bad += 1
        return 1 if bad else 0
    if not a.out_dir:
        ap.error("give an experiment folder, --parse or --check")

    df = tab.load_results(a.out_dir)
    if df.empty:
        print(f"no results under {a.out_dir}/store", file=sys.stderr)
        return 1
    summary = tab.summarize(tab.with_variants(df), "diffid", n_boot=a.n_boot, seed=a.seed)
    cmp = pub.compare_with_published(summary, pub.load_published(a.published_dir))
    md = pub.comparison_markdown(cmp)
    out = Path(a.out_dir)
    (out / "published_comparison.md").write_text(md, encoding="utf-8")
    cmp.to_csv(out / "published_comparison.csv", index=False, lineterminator="\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
