# Every target installs what it needs first (uv from PyPI, then the locked environment).
PYTHON ?= python3
# Where the environment lives; CI builds the runtime environment in a place of its own.
VENV ?= .venv
UV := $(PYTHON) -m uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False
# Another apt process (unattended upgrades, a second install) holds the lock: wait for it.
APT := apt-get -o DPkg::Lock::Timeout=300 -o Acquire::Retries=3

.PHONY: install install-dev system-deps dictionary run ingest test test-fast lint eval bench bench-server

# The runtime environment: everything app.py, ingest.py and `python -m assistant` import, no dev
# group. --inexact leaves packages it did not install alone, so `make run` next to a test run in the
# same .venv does not uninstall pytest or playwright under it.
install:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --no-dev --inexact --python $(PYTHON)

install-dev:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --python $(PYTHON)

# Browser tests drive Debian's Chromium (never a downloaded browser build); the shared-store tests
# start a throwaway PostgreSQL cluster from Debian's postgresql package. Needs root (or sudo).
system-deps:
	@test -x /usr/bin/chromium || ($(APT) update -qq && \
		DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq chromium >/dev/null)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ($(APT) update -qq && \
		DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq postgresql >/dev/null)
	@$(MAKE) --no-print-directory dictionary

# The English-German dictionary English questions are searched with (optional at run time: without
# it the app logs a warning and searches English questions without it).
dictionary:
	@test -f /usr/share/trans/de-en || ($(APT) update -qq && \
		DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq trans-de-en >/dev/null)

run: install
	$(VENV)/bin/python app.py

ingest: install
	$(VENV)/bin/python ingest.py

test: install-dev system-deps
	$(VENV)/bin/python -m pytest

# The quick loop while working: no browser, no Chroma/PostgreSQL servers.
test-fast: install-dev dictionary
	$(VENV)/bin/python -m pytest -m "not browser and not server"

lint: install-dev
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

eval: install dictionary
	$(VENV)/bin/python -m assistant eval

bench: install-dev
	$(VENV)/bin/python benchmarks/bench_core.py

# Embedded store vs Chroma server (+ PostgreSQL records); starts both servers itself.
bench-server: install-dev system-deps
	$(VENV)/bin/python benchmarks/bench_server.py
