# Rebound: `make run` serves the app with its worker; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi.py
HOST ?= 127.0.0.1
PORT ?= 5000
# Where Rebound is reached: webhook URLs, panel links and the demo helpdesk's write-back address.
export REBOUND_PUBLIC_URL ?= http://$(HOST):$(PORT)

.PHONY: run test test-unit test-sqlite test-postgres test-browser install install-dev migrate demo worker bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# htmx for the agent panel, from the npm registry (package.json pins it). Without npm the panel
# still works, as plain HTML forms.
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --omit=dev --no-audit --no-fund && touch $@; \
	else echo "npm not found: skipping htmx (the agent panel works without it)"; fi

install: $(VENV)/.installed node_modules/.installed
install-dev: $(VENV)/.installed-dev node_modules/.installed

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

## test: unit tests once, integration and functional tests on SQLite and on PostgreSQL, browser tests once (SQLite)
test: install-dev
	$(BIN)/python -m pytest tests/unit -q
	REBOUND_TEST_DB=sqlite $(BIN)/python -m pytest tests/integration tests/functional -q -n 2
	REBOUND_TEST_DB=postgresql $(BIN)/python -m pytest tests/integration tests/functional -q -n 2
	REBOUND_TEST_DB=sqlite $(BIN)/python -m pytest tests/browser -q

test-unit: install-dev
	$(BIN)/python -m pytest tests/unit -q

test-sqlite: install-dev
	REBOUND_TEST_DB=sqlite $(BIN)/python -m pytest tests/integration tests/functional -q

test-postgres: install-dev
	REBOUND_TEST_DB=postgresql $(BIN)/python -m pytest tests/integration tests/functional -q

## test-browser: the demo helpdesk and the panel in Debian's Chromium (installed with apt-get if missing)
test-browser: install-dev
	REBOUND_TEST_DB=sqlite $(BIN)/python -m pytest tests/browser -q

bench: install-dev
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis
