# Quick start: `make demo` and `make test`. Both create .venv from the lock files on first use.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
LOCKS := requirements.lock requirements-dev.lock deploy/airflow/requirements-airflow.lock pyproject.toml
STAMP := $(VENV)/.installed-$(shell cat $(LOCKS) deploy/install.sh | sha1sum | cut -c1-12)

.PHONY: install demo web test test-fast lint coverage stack stack-stop stack-status lock clean

install: $(STAMP)

# The same install as the Airflow image (deploy/install.sh): both lock files, the project, an import
# of the Celery executor; then the test and lint tools, which no image carries.
$(STAMP): $(LOCKS) deploy/install.sh
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	deploy/install.sh $(BIN)/python
	deploy/install.sh $(BIN)/python dev
	rm -f $(VENV)/.installed-* && touch $(STAMP)

demo: install
	$(BIN)/shelfwatch demo

# The web views over the demo's data (logins printed at the end of `make demo`).
web: install
	$(BIN)/shelfwatch web

# axe-core for the accessibility tests and pyright for the import-resolution test, from package-lock.json
# (skipped where npm is missing; CI has it)
AXE := node_modules/axe-core/axe.min.js
$(AXE): package.json package-lock.json
	if command -v npm >/dev/null; then npm ci --no-audit --no-fund --silent && touch $(AXE); fi

# The README's test command, and what CI runs: lint, format, types, then the whole suite on both cores
# (pytest-xdist; each worker builds its own database templates, tests/conftest.py).
test: install $(AXE) lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --durations=30

test-fast: install $(AXE)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not slow"

TEST_WORKERS ?= 2

# ruff (lint and format check) over the tree; mypy, strict, over core/, sql/, forecasting/, alerts/
# (pyproject.toml's [tool.ruff] and [tool.mypy]).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Branch coverage of the whole suite, per package (coverage.xml and the table in out/coverage.txt).
coverage: install $(AXE)
	mkdir -p out
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --cov --cov-branch --cov-report=xml:out/coverage.xml --cov-report=term \
	  | tee out/coverage.txt

# The production topology of docker-compose.yml as local processes under supervisord (no Docker):
# Airflow api-server, scheduler, dag-processor, triggerer, Celery workers, the ingest service and the
# web views, against the PostgreSQL, Redis and Mosquitto named in the environment (README "Run
# without Docker"). Logs and pids in $(STACK_DIR).
STACK_DIR ?= .stack
stack: install
	$(BIN)/shelfwatch stack up --dir $(STACK_DIR)

stack-status: install
	$(BIN)/shelfwatch stack status --dir $(STACK_DIR)

stack-stop:
	$(BIN)/shelfwatch stack down --dir $(STACK_DIR)

# Re-resolve the pinned set after changing pyproject.toml's dependencies.
lock:
	rm -rf .lockvenv && $(PY) -m venv .lockvenv
	.lockvenv/bin/python -m pip install --quiet --upgrade "pip>=24"
	.lockvenv/bin/python -m pip install --quiet .
	.lockvenv/bin/python -m pip freeze --exclude shelfwatch | sort > requirements.lock
	.lockvenv/bin/python -m pip install --quiet ".[test,lint]" -c requirements.lock
	{ sed -n 1,2p requirements-dev.lock; .lockvenv/bin/python -m pip freeze --exclude shelfwatch | sort \
	  | comm -13 requirements.lock -; } > requirements-dev.lock.new && mv requirements-dev.lock.new requirements-dev.lock
	rm -rf .lockvenv

clean:
	rm -rf $(VENV) data out .pytest_cache
