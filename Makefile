# Market Sentinel — the two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_ARGS ?=
# Two test processes, one test file each at a time (module-scoped servers stay shared within a file): most tests
# wait on real servers, so two keep both cores busy. TEST_WORKERS= runs them in one process.
TEST_WORKERS ?= -n 2 --dist loadfile
# Debian packages of the servers, browser and fonts the full test suite starts itself on 127.0.0.1.
# Neither command needs them: without them `make demo` uses the embedded broker and `make test` skips what needs
# them, naming them in its last lines.
SYSTEM_PACKAGES := mosquitto mosquitto-clients postgresql victoria-metrics influxdb chromium fonts-noto-cjk \
	fonts-wqy-zenhei nginx haproxy ffmpeg
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint check install clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e '.[edge,cloud,dev]'
	@if [ -f cloud/web/package.json ] && command -v npm >/dev/null; then \
		cd cloud/web && npm ci --silent --no-audit --no-fund || echo "npm install failed: the console is disabled, the API still works"; fi
	touch $(STAMP)

install: $(STAMP)

system-deps:
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES)
	@# Debian may start the services on install; the tests run their own instances.
	@for svc in mosquitto postgresql influxdb victoria-metrics nginx haproxy; do \
		$(SUDO) service $$svc stop >/dev/null 2>&1 || true; done

demo: $(STAMP)
	$(BIN)/sentinel demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=25 $(TEST_WORKERS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

check: lint test

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
