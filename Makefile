# The two commands of the README:
#   make repro   set up the environment, then run the whole pipeline (dvc repro)
#   make test    set up the environment if needed, then run the test suite
# Everything runs offline: Prefect and DVC keep their state inside the project
# (git-ignored) and send no analytics.

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin

export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 180
export PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL ?= WARNING
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export PYTHONHASHSEED := 0
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup repro test lint bench clean-env

setup: $(VENV)/.installed

# torch/torchvision are pinned in pyproject.toml to the releases that pip
# installs from this machine's local wheel cache; nothing else is compiled.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dask,dev]'
	touch $@

repro: setup
	$(BIN)/dvc repro

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check cmisc_model tasks flows tests benchmarks

# Speed measurements (not tests); figures in benchmarks/README.md.
bench: setup
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean-env:
	rm -rf $(VENV)
