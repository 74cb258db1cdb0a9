"""``python -m benchmarks.report <out_dir>``: write ``<out_dir>/report.html`` (see :mod:`benchmarks.report.page`)."""
import sys

from benchmarks.report.page import main

if __name__ == "__main__":
    sys.exit(main())
