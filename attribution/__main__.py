"""``python -m attribution ...``: the ``attribution-bench`` command (:mod:`attribution.cli`)."""
import sys

from attribution.cli import main

sys.exit(main())
