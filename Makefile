# Two entry points: `make run` starts the portal on embedded defaults, `make test`
# runs the test suite. Both create the virtual environment on first use.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-postgres install install-test browser-deps services clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -c requirements.lock -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test]'

browser-deps:
	@scripts/ensure-chromium

services:
	@scripts/ensure-redis

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_content
	HOST=$(HOST) PORT=$(PORT) PYTHON=$(BIN)/python scripts/run-portal

test: install-test browser-deps services
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The same suite against PostgreSQL; DATABASE_URL defaults to the local server.
test-postgres: install-test browser-deps services
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/portal} \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache
