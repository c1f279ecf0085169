# Every target creates .venv and installs what it needs; only Python 3.11+ is assumed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q

.PHONY: install dev test lint format demo demo-stop bench clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Shipyard needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed  ## the package and its core dependencies

dev: $(VENV)/.installed-dev  ## plus test and lint tools

test: dev  ## the whole suite (PostgreSQL tests need SHIPYARD_TEST_POSTGRES_URL)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: dev  ## ruff, mypy and the import-layer contracts
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

format: dev
	$(BIN)/ruff format src tests bench examples
	$(BIN)/ruff check --fix src tests bench examples

demo: install  ## start Shipyard on a fresh home, train, track, register, promote, show lineage
	$(BIN)/python examples/quickstart/demo.py

demo-stop:
	$(BIN)/python examples/quickstart/demo.py --stop

bench: dev  ## tracking, then serving, side by side with MLflow (makes its own MLflow venv; serving needs wrk)
	status=0; \
	$(BIN)/python bench/tracking.py || status=1; \
	$(BIN)/python bench/serving.py || status=1; \
	exit $$status

clean:
	rm -rf $(VENV) .shipyard-demo .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info
