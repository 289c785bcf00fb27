# One place for the set-up: every target creates .venv if missing and installs what it needs.
PYTHON ?= python3
TORCH  ?= torch==2.13.0
VENV   := .venv
BIN    := $(VENV)/bin
# Pytest workers: 2 cores on the reference machine.
WORKERS ?= 2

.PHONY: install install-test reproduce verify bench bench-selection test check-all clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch is installed first and pinned, so a CPU machine never pulls the CUDA stack.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## The main job (README command 1): every check, the benchmarks' default grids and every figure; writes
## reports/index.html and reports/summary.md (about 25 minutes on 2 cores). `make reproduce ARGS=--full` for full sizes.
ARGS ?=
reproduce: install
	$(BIN)/robustdistill reproduce $(ARGS)

verify: install
	$(BIN)/robustdistill verify

bench: install
	$(BIN)/robustdistill bench game
	$(BIN)/robustdistill bench losses
	$(BIN)/robustdistill bench halfspace
	$(BIN)/robustdistill bench throughput

## Selection time of every selector beside margin sampling in scikit-activeml. The peer goes into a
## throw-away venv in a mktemp -d folder, removed afterwards (also on failure); .venv never gets it.
PEER ?= scikit-activeml==1.0.1 scikit-learn==1.9.1 numpy==2.4.6 scipy==1.17.1
bench-selection: install
	peer=$$(mktemp -d) && trap 'rm -rf "$$peer"' EXIT && \
	$(PYTHON) -m venv "$$peer" && \
	"$$peer/bin/pip" install --quiet $(PEER) && \
	$(BIN)/python -m robustdistill.experiments.benchmarks.selection --peer-python "$$peer/bin/python" \
		--json reports/bench_selection.json

## The test suite (README command 2; .ci/run calls it). Slow checks are excluded.
test: install-test
	$(BIN)/python -m pytest -n $(WORKERS) -m "not slow"

## Everything, including tests marked slow.
check-all: install-test
	$(BIN)/python -m pytest -n $(WORKERS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
