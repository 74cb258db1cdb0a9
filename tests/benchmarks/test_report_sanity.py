"""The sanity verdict table: the pass rules as stated, one row per method, files written beside table.md."""
import math

import pandas as pd

from benchmarks.report import sanity

NAN = math.nan


def test_pass_rules():
    assert sanity.verdict(0.2, 0.1, 0.3, "similarity") == ("pass", "")
    assert sanity.verdict(0.2, 0.1, 0.6, "similarity") == ("fail", "")  # the interval reaches 0.5
    assert sanity.verdict(0.2, NAN, NAN, "similarity") == ("pass", "(mean)")
    assert sanity.verdict(0.1, 0.02, 0.2, "rise") == ("pass", "")
    assert sanity.verdict(0.1, -0.01, 0.2, "rise") == ("fail", "")
    assert sanity.verdict(NAN, NAN, NAN, "rise") == ("", "")


def test_table_and_files(tmp_path):
    rows = [dict(dataset="mnist", model="mnist_cnn", variant=v, column=c, mean=m, lo=lo, hi=hi, n=32)
            for v, c, m, lo, hi in [("ig", "mprt.mprt", 0.9, 0.85, 0.95), ("random", "mprt.mprt", 0.05, 0.0, 0.1),
                                    ("ig", "efficient_mprt.efficient_mprt", 0.3, 0.2, 0.4),
                                    ("ig", "max_sensitivity.max_sensitivity", 0.3, 0.2, 0.4)]]
    frame = sanity.sanity_frame(pd.DataFrame(rows))
    assert list(frame["check"]) == ["MPRT", "MPRT", "eMPRT"]  # robustness has no verdict
    assert list(frame["verdict"]) == ["fail", "pass", "pass"]
    paths = sanity.write_sanity(pd.DataFrame(rows), tmp_path)
    md = paths["sanity.md"].read_text()
    assert "0.90 [0.85, 0.95] fail" in md and "0.05 [0.00, 0.10] pass" in md and "0.30 [0.20, 0.40] pass" in md
    assert sanity.write_sanity(pd.DataFrame(columns=["column"]), tmp_path) == {}
    assert not (tmp_path / "sanity.md").exists()  # a store without sanity columns leaves none behind
