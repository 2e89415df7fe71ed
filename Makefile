# nemo-batch: `make help` lists the targets.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

LOCK := requirements.lock

.PHONY: help install test lint format demo up bench chaos migrate lock

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -c $(LOCK) -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## Create .venv and install the project with the locked versions.

lock: ## Resolve the newest versions pyproject.toml allows into requirements.lock.
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip
	.lock-venv/bin/python -m pip install -q '.[dev]'
	{ echo "# The versions nemo-batch was tested with; \`make install\` installs exactly these."; \
	  echo "# Made by \`make lock\`. An upgrade is a change of this file that passes make test and make chaos."; \
	  .lock-venv/bin/python -m pip freeze --exclude nemo-batch; } > $(LOCK)
	rm -rf .lock-venv

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

up: install ## The whole stack in the foreground (embedded servers unless URLs are given).
	$(VENV)/bin/nemo-batch up

bench: install ## Print every benchmark figure beside its target (BENCH_ARGS=--quick for smaller sizes).
	$(PY) -m bench.run $(BENCH_ARGS)

chaos: install ## Inject faults into running batches and print lost and duplicate renders.
	$(PY) -m bench.chaos $(CHAOS_ARGS)
