# Safety Nexus — every command a developer or CI needs. `make demo` and `make test`
# each build the virtual environment (and install missing Debian packages) on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo test lint typecheck bench system-deps clean

$(STAMP): pyproject.toml constraints.txt
	@# Debian's own python3 needs python3-venv for `-m venv`; install it when ensurepip is missing.
	@$(PYTHON) -c "import ensurepip" 2>/dev/null || bash scripts/ensure-debian-packages.sh python3-venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Debian packages the tests drive for real: a browser, an MQTT broker, Prometheus and its
# Alertmanager.
system-deps:
	@bash scripts/ensure-debian-packages.sh chromium mosquitto prometheus prometheus-alertmanager

demo: $(STAMP)
	$(BIN)/nexus demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) system-deps lint typecheck
	$(BIN)/pytest -n auto

# Every benchmark prints a one-line summary and writes its figures to benchmarks/results/.
# Public datasets (NAB, BATADAL) come from $NEXUS_DATA, by default ../shared/datasets; a
# benchmark whose data is missing says so and is skipped.
NEXUS_DATA ?= $(abspath $(CURDIR)/../shared/datasets)
bench: $(STAMP)
	@set -e; for b in benchmarks/[!_]*.py; do echo "== $$b"; NEXUS_DATA="$(NEXUS_DATA)" $(BIN)/python $$b; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
