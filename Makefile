# Two commands matter: `make run` and `make test`. Both set themselves up first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast test-postgres lint figures setup bench clean

$(STAMP): requirements.txt requirements-dev.txt requirements-nodeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

# The console map's library (Leaflet), served by the app from this untracked folder (no CDN).
MAP_LIBRARY := vendor/leaflet/leaflet.js
$(MAP_LIBRARY): scripts/fetch_map_library.py | $(STAMP)
	$(PY) -m scripts.fetch_map_library vendor/leaflet

setup: $(STAMP) $(MAP_LIBRARY)

run: $(STAMP) $(MAP_LIBRARY)
	$(PY) -m scripts.launch

# In parallel, one test process per core (pytest-xdist); `make test-fast` leaves out the slow fault tests.
TEST_WORKERS ?= auto
test: $(STAMP) $(MAP_LIBRARY)
	$(PY) -m pytest -q -n $(TEST_WORKERS) $(PYTEST_ARGS)

test-fast: $(STAMP) $(MAP_LIBRARY)
	$(PY) -m pytest -q -n $(TEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

# ruff (lint and format), the layer contract of .importlinter, and mypy.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy

# Refresh the tracked docs/reliability.md deliberately (plain test runs write to instance/ only).
figures: $(STAMP)
	RELIABILITY_DOC=$(CURDIR)/docs/reliability.md $(PY) -m pytest -q -n $(TEST_WORKERS) tests/reliability tests/security
	RELIABILITY_DOC=$(CURDIR)/docs/reliability.md TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
		$(PY) -m pytest -q -m db tests/reliability tests/security

# The database tests again, against PostgreSQL (TEST_DATABASE_URL defaults to the local server).
test-postgres: $(STAMP) $(MAP_LIBRARY)
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
		$(PY) -m pytest -q -n $(TEST_WORKERS) -m "db" $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m benchmarks.webhook_bench
	$(PY) -m benchmarks.fair_floor_bench
	$(PY) -m benchmarks.latency_bench
	$(PY) -m benchmarks.pipeline_bench
	$(PY) -m benchmarks.sweep_bench
	$(PY) -m benchmarks.parser_bench
	$(PY) -m benchmarks.broadcast_bench

clean:
	rm -rf $(VENV) instance .pytest_cache vendor
