# The handful of commands people run. `make setup` once, then any of the others.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup serve demo test lint format bench

setup:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e ".[dev]"
	npm ci --no-audit --no-fund

serve:
	$(BIN)/smartstudy serve --demo

demo:
	$(BIN)/smartstudy demo

test:
	$(BIN)/pytest -n auto

lint:
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format:
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench:
	@for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done
