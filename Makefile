# One place for the set-up: every target creates .venv if missing and installs what it needs.
PYTHON ?= python3
TORCH  ?= torch==2.13.0
VENV   := .venv
BIN    := $(VENV)/bin
# Pytest workers: 2 cores on the reference machine.
WORKERS ?= 2

.PHONY: install install-test install-docs fashion-mnist reproduce verify bench bench-selection test check-all docs clean

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

$(VENV)/.installed-docs: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[docs]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test
install-docs: $(VENV)/.installed-docs

## The main job (README command 1): every check, the benchmarks' default grids and every figure; writes
## reports/index.html and reports/summary.md (about 70 minutes on 2 cores, 30 of them the Fashion-MNIST benchmark). `make reproduce ARGS=--full` for full sizes.
ARGS ?=
reproduce: install fashion-mnist
	$(BIN)/robustdistill reproduce $(ARGS)

## Fashion-MNIST for the real-data benchmark: the Debian package dataset-fashion-mnist, installed with apt-get
## when run as root. Otherwise (or if that fails) the benchmark is skipped and the report says how to enable it.
FASHION_MNIST := /usr/share/datasets/fashion-mnist
fashion-mnist:
	@if [ -d "$(FASHION_MNIST)" ] || [ -n "$$ROBUSTDISTILL_DATA" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing the Debian package dataset-fashion-mnist (Fashion-MNIST, about 30 MB)"; \
		{ apt-get install -y -q dataset-fashion-mnist || { apt-get update -q && apt-get install -y -q dataset-fashion-mnist; }; } \
			>/dev/null 2>&1 || echo "could not install dataset-fashion-mnist: the real-data benchmark will be skipped"; \
	else \
		echo "Fashion-MNIST not found: 'sudo apt-get install dataset-fashion-mnist' (or set ROBUSTDISTILL_DATA to a" \
			"folder with its IDX files) enables the real-data benchmark; it will be skipped"; \
	fi

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
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadgroup -m "not slow"

## Everything, including tests marked slow.
check-all: install-test
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadgroup

## The documentation site (theory, API reference, results, examples), built offline into docs/_build/html;
## warnings are errors.
docs: install-docs
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html
	@echo "open docs/_build/html/index.html"

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis docs/_build
