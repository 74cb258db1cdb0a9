# Two commands set up a fresh machine by themselves: `make demo` and `make test`.
# The harness (benchmarks/) is not installed: every target runs `python -m benchmarks.<tool>` from the clone's root
# (make's working directory), with the root on PYTHONPATH for the processes they start (Hydra launchers' workers).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
TORCH   ?= torch==2.14.1 torchvision==0.29.1
PYTEST_ARGS ?= -n 2
export PYTHONUNBUFFERED := 1
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: venv test test-fast test-slurm slurm-cluster demo reproduce-table1 table speed flops precision clean lint

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch, torchvision" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check attribution benchmarks scripts tests
	$(BIN)/python -m pytest $(PYTEST_ARGS) -q -ra -m "not slurm"

test-fast: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS) -q -m "not slow and not slurm"

# The sweeps on a real SLURM cluster (tests/benchmarks/test_slurm.py), one at a time, apart from the suite: they
# share the cluster's CPUs. They skip, saying why, where no cluster with accounting answers (make slurm-cluster).
test-slurm: $(STAMP)
	$(BIN)/python -m pytest -p no:xdist -q -ra -m slurm tests/benchmarks/test_slurm.py

slurm-cluster:
	bash scripts/slurm_cluster.sh

demo: $(STAMP)
	$(BIN)/python -m benchmarks.demo

reproduce-table1: $(STAMP)
	$(BIN)/python -m benchmarks.run experiment=table1 --multirun

table: $(STAMP)
	$(BIN)/python -m benchmarks.table results/demo

speed: $(STAMP)
	$(BIN)/python -m benchmarks.perf.speed

flops: $(STAMP)
	$(BIN)/python -m benchmarks.perf.flops --grid

precision: $(STAMP)
	$(BIN)/python -m benchmarks.perf.precision

lint: $(STAMP)
	$(BIN)/ruff check attribution benchmarks scripts tests

clean:
	rm -rf $(VENV) .pytest_cache outputs multirun
