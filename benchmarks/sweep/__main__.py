"""``python -m benchmarks.sweep <sweep dir | out_dir>``: a sweep's progress (see :mod:`benchmarks.sweep.progress`)."""
import sys

from benchmarks.sweep.progress import main

if __name__ == "__main__":
    sys.exit(main())
