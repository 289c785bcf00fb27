# One place for the set-up: every target creates .venv if missing and installs what it needs.
PYTHON ?= python3
TORCH  ?= torch==2.13.0
VENV   := .venv
BIN    := $(VENV)/bin
# Pytest workers: 2 cores on the reference machine.
WORKERS ?= 2

.PHONY: install install-test reproduce verify bench test check-all clean

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

## The main job (README command 1).
reproduce: install
	$(BIN)/robustdistill verify

verify: install
	$(BIN)/robustdistill verify

bench: install
	$(BIN)/robustdistill bench game
	$(BIN)/robustdistill bench losses
	$(BIN)/robustdistill bench halfspace
	$(BIN)/robustdistill bench throughput

## The test suite (README command 2; .ci/run calls it). Slow checks are excluded.
test: install-test
	$(BIN)/python -m pytest -n $(WORKERS) -m "not slow"

## Everything, including tests marked slow.
check-all: install-test
	$(BIN)/python -m pytest -n $(WORKERS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
