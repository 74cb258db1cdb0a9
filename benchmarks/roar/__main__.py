"""``python -m benchmarks.roar experiment=roar_mnist``: ROAR with retraining (see :mod:`benchmarks.roar.app`)."""
from benchmarks.roar.app import main

if __name__ == "__main__":
    main()
