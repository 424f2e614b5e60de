# The golden path: `make demo` runs the portal with demo data; `make test` runs the suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
UV_VERSION := 0.13.9
CHROMIUM_PATH ?= /usr/bin/chromium
PORTAL_PORT ?= 8000
MLFLOW_PORT ?= 5000
PYTEST_ARGS ?=
ONLY ?=
SIZE ?= full
export PORTAL_PORT MLFLOW_PORT CHROMIUM_PATH
export PATH := $(BIN):$(PATH)

.PHONY: help install demo test bench lint lock chromium clean

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: uv.lock pyproject.toml
	@PY=$$(scripts/find-python) && echo "Using $$PY" && \
	  { [ -x $(BIN)/python ] || $$PY -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv sync --frozen --inexact --python $(BIN)/python
	@touch $@

install: $(VENV)/.installed ## Create .venv from the lock file

demo: install ## Run the portal, MLflow and a Celery worker with demo data (Ctrl-C stops all)
	@mkdir -p var/mlflow
	@# MLflow encrypts webhook secrets at rest; a key kept across restarts lets it read them back.
	@[ -s var/mlflow/webhook-encryption.key ] || $(BIN)/python -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())" > var/mlflow/webhook-encryption.key
	$(BIN)/python manage.py migrate --no-input -v 0
	$(BIN)/python manage.py seed_demo
	@echo "Portal: http://127.0.0.1:$(PORTAL_PORT)   MLflow: http://127.0.0.1:$(MLFLOW_PORT)   (Ctrl-C stops everything)"
	exec $(BIN)/honcho start -f Procfile

chromium: ## Make sure a Chromium for the browser tests is installed
	@if [ -x "$(CHROMIUM_PATH)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's chromium for the browser tests…"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "The browser tests need Chromium at $(CHROMIUM_PATH). Run: sudo apt-get install -y chromium" >&2; \
	  echo "(or set CHROMIUM_PATH to an installed Chromium)" >&2; exit 1; \
	fi

test: install chromium ## Run the whole suite, browser journeys included
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install ## Run the benchmarks and rewrite docs/benchmarks.md (ONLY=<name>, SIZE=smoke|full)
	$(BIN)/python -m bench.run --size $(SIZE) $(if $(ONLY),--only $(ONLY),)

lint: install ## ruff
	$(BIN)/ruff check .

lock: ## Re-resolve dependencies into uv.lock
	@PY=$$(scripts/find-python) && uv lock --python $$PY

clean: ## Remove the demo's data (database, MLflow store, broker folder)
	rm -rf var
