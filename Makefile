# The two commands: `make run` (embedded portal) and `make test` (the whole suite).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

.PHONY: run test lint typecheck pytest system-deps clean openapi

system-deps:
	@scripts/system-deps.sh

$(VENV)/.installed: pyproject.toml | system-deps
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(PY) manage.py init_secrets
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v 0
	$(PY) manage.py seed_demo
	exec $(PY) manage.py serve --exit-with-parent

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) scripts/check_architecture.py

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy .

pytest: $(VENV)/.installed
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# docs/openapi.yaml, regenerated from the code (tests/test_openapi.py fails when it drifts).
openapi: $(VENV)/.installed
	$(PY) manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml

clean:
	rm -rf var .mypy_cache .pytest_cache .ruff_cache
