# Two commands on a fresh machine: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

# Nothing is ever downloaded at run time: no model hub, no tiktoken files.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install browser run run-postgres index serve test lint typecheck bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: the CPU build on this machine's disk, never a CUDA build from PyPI.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Build the index from seeds/ when it is missing or stale, then serve on $(HOST):$(PORT).
run: index serve

index: install
	$(BIN)/qa build --if-stale --corpus seeds --index index

serve: install
	$(BIN)/qa serve --index index --host $(HOST) --port $(PORT)

## The same on PostgreSQL + pgvector: a local server (pinned wheel) in .postgres/ on a free loopback port,
## the seeds built into it, served on $(HOST):$(PORT); the server stops when serving does.
run-postgres: install
	$(BIN)/python scripts/run_postgres.py --host $(HOST) --port $(PORT)

## Debian's Chromium for the browser test (tests/server/test_web.py); Playwright drives it, never downloads one.
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

## Lint, type-check and run the whole test suite.
test: install browser lint typecheck
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

typecheck: install
	$(BIN)/mypy src/qa

bench: index
	$(BIN)/python scripts/bench.py

clean:
	rm -rf $(VENV) index/*/ index/CURRENT .pytest_cache .mypy_cache .ruff_cache
