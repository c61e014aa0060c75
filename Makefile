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

# The tests start their own Mosquitto brokers, VictoriaMetrics servers (which speak
# InfluxDB's write API) and PostgreSQL clusters (to stop and start them), and drive
# Chromium for the web app: install them from Debian where missing.
system-deps:
	@missing=""; \
	command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing="mosquitto"; \
	command -v victoria-metrics >/dev/null || missing="$$missing victoria-metrics"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	if [ -n "$$missing" ]; then \
		$(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q $$missing; \
	fi

test: $(BIN)/python system-deps
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	# Most tests wait on brokers, databases and processes: three workers keep two cores busy.
	$(BIN)/pytest -n 3
