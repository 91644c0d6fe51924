# Every target installs what it needs first (uv from PyPI, then the locked environment).
PYTHON ?= python3
UV := $(PYTHON) -m uv
export UV_PYTHON_DOWNLOADS := never
export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False

.PHONY: install install-dev system-deps run ingest test lint eval bench bench-server

install:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --no-dev --python $(PYTHON)

install-dev:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --python $(PYTHON)

# Browser tests drive Debian's Chromium (never a downloaded browser build); the shared-store tests
# start a throwaway PostgreSQL cluster from Debian's postgresql package.
system-deps:
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null)

run: install
	.venv/bin/python app.py

ingest: install
	.venv/bin/python ingest.py

test: install-dev system-deps
	.venv/bin/python -m pytest

lint: install-dev
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

eval: install
	.venv/bin/python -m assistant eval

bench: install-dev
	.venv/bin/python benchmarks/bench_core.py

# Embedded store vs Chroma server (+ PostgreSQL records); starts both servers itself.
bench-server: install-dev system-deps
	.venv/bin/python benchmarks/bench_server.py
