# Two commands matter on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean venv airflow-venv compiled

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# The request path compiled by Cython, in place (src/rolebridge/compiled): rebuilds only modules whose
# source changed (a no-op otherwise); a stale build is never imported, and a failed one leaves the
# interpreted sources in charge. ROLEBRIDGE_COMPILED=0 runs interpreted.
compiled: $(STAMP)
	$(BIN)/python -m rolebridge.compiled build

# Airflow 3 is heavy (~300 MB, ~1 min) and pins its own deps: it gets its own venv, with rolebridge
# installed editable, for tests/airflow (a real dag.test() on SQLite).
AIRFLOW_VENV := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed
$(AIRFLOW_STAMP): pyproject.toml
	test -x $(AIRFLOW_VENV)/bin/python || $(PY) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install -q -e '.[airflow]'
	touch $(AIRFLOW_STAMP)

airflow-venv: $(AIRFLOW_STAMP)

demo: $(STAMP) compiled
	$(BIN)/rolebridge demo

test: $(STAMP) $(AIRFLOW_STAMP) compiled
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)
	# the interpreted sources are the reference: the in-process suites of the hot path run on them too
	ROLEBRIDGE_COMPILED=0 $(BIN)/python -m pytest -q tests/http tests/policy tests/audit/test_audit_units.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

bench: $(STAMP) compiled
	$(BIN)/python bench/run.py

clean:
	test ! -x $(BIN)/python || $(BIN)/python -m rolebridge.compiled clean
	rm -rf $(VENV) $(AIRFLOW_VENV) .rolebridge .pytest_cache build *.egg-info src/*.egg-info
