"""``python -m benchmarks.run [key=value ...]``: the Hydra app (see :mod:`benchmarks.run.app`)."""
from benchmarks.run.app import main

if __name__ == "__main__":
    main()
