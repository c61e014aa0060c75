# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8000
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: demo test system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Installs the cloud parts and runs broker, simulated fleet, ingest, API and dashboard.
demo: $(BIN)/python
	$(BIN)/pip install -q -e '.[cloud]'
	$(BIN)/medicobus demo --port $(PORT)

# The tests start their own Mosquitto brokers: install it from Debian where missing.
system-deps:
	@if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then \
		$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q mosquitto; \
	fi

test: $(BIN)/python system-deps
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest
