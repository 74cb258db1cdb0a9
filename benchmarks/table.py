"""``python -m benchmarks.table <out_dir> [...]``: the tables of an experiment folder
(:mod:`benchmarks.report.table`)."""
import sys

from benchmarks.report.table import main

if __name__ == "__main__":
    sys.exit(main())
