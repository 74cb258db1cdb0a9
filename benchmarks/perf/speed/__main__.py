"""``python -m benchmarks.perf.speed [...]`` (usage: :mod:`benchmarks.perf.speed`)."""
from benchmarks.perf.speed import _cli

if __name__ == "__main__":  # pragma: no cover
    _cli()
