# Rebound: `make run` serves the app with its worker; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi.py
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test test-unit test-sqlite test-postgres install install-dev migrate demo worker bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(BIN)/flask db upgrade

demo: migrate
	$(BIN)/flask demo load

## run: migrate the embedded SQLite database, load the demo data, serve the app and its worker
run: demo
	@echo "Rebound on http://$(HOST):$(PORT)  (Ctrl-C stops the web server and the worker)"
	@trap 'kill 0' INT TERM EXIT; \
	$(BIN)/flask worker & \
	$(BIN)/flask run --host $(HOST) --port $(PORT)

worker: migrate
	$(BIN)/flask worker

## test: unit tests once, then integration and functional tests on SQLite and on PostgreSQL
test: install-dev
	$(BIN)/python -m pytest tests/unit -q
	REBOUND_TEST_DB=sqlite $(BIN)/python -m pytest tests/integration tests/functional -q -n 2
	REBOUND_TEST_DB=postgresql $(BIN)/python -m pytest tests/integration tests/functional -q -n 2

test-unit: install-dev
	$(BIN)/python -m pytest tests/unit -q

test-sqlite: install-dev
	REBOUND_TEST_DB=sqlite $(BIN)/python -m pytest tests/integration tests/functional -q

test-postgres: install-dev
	REBOUND_TEST_DB=postgresql $(BIN)/python -m pytest tests/integration tests/functional -q

bench: install-dev
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis
