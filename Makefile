# Two commands matter: `make run` and `make test`. Both set themselves up first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-postgres setup bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(PY) -m scripts.launch

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The database tests again, against PostgreSQL (TEST_DATABASE_URL defaults to the local server).
test-postgres: $(STAMP)
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
		$(PY) -m pytest -q -m "db" $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m benchmarks.webhook_bench
	$(PY) -m benchmarks.pipeline_bench
	$(PY) -m benchmarks.sweep_bench
	$(PY) -m benchmarks.parser_bench
	$(PY) -m benchmarks.broadcast_bench

clean:
	rm -rf $(VENV) instance .pytest_cache
