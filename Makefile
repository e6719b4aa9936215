# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-dev index serve lint format bench bench-scale clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch comes from its CPU build only: constraints.txt pins torch==2.13.0.
$(VENV)/.installed: $(PY) pyproject.toml constraints.txt
	$(PIP) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Incremental: embeds only new or changed reports, and is a no-op when nothing changed.
index: install
	$(VENV)/bin/qabot index build

run: index
	$(VENV)/bin/qabot serve --host $(HOST) --port $(PORT)

test: install-dev
	$(PY) -m pytest

lint: install-dev
	$(VENV)/bin/ruff check src tests bench bot.py
	$(VENV)/bin/ruff format --check src tests bench bot.py

format: install-dev
	$(VENV)/bin/ruff format src tests bench bot.py
	$(VENV)/bin/ruff check --fix src tests bench bot.py

bench: install
	$(PY) bench/latency.py

# Generated corpora up to 100k passages (minutes); `$(PY) bench/scale.py --max 1000000` for all.
bench-scale: install
	nice -n 10 $(PY) bench/scale.py --sizes 1k,10k,100k

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
