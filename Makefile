# nemo-batch: `make help` lists the targets.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: help install test lint format demo bench chaos migrate

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## Create .venv and install the project with its dev extras.

test: install ## Run the whole test suite (real Postgres, Redis, workers and emulator).
	$(PY) -m pytest

lint: install ## ruff and mypy.
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install ## Fix what ruff can.
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrate: install ## Upgrade the database to the newest schema.
	$(VENV)/bin/nemo-batch migrate

demo: install ## Run the whole stack against the emulator on examples/products.csv.
	$(VENV)/bin/nemo-batch demo

bench: install ## Print every benchmark figure beside its target (BENCH_ARGS=--quick for smaller sizes).
	$(PY) -m bench.run $(BENCH_ARGS)

chaos: install ## Inject faults into running batches and print lost and duplicate renders.
	$(PY) -m bench.chaos $(CHAOS_ARGS)
