# The README's two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,loadtest]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/relay serve

test: $(STAMP)
	$(BIN)/ruff check relay tests loadtests
	$(BIN)/ruff format --check relay tests loadtests
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check relay tests loadtests
	$(BIN)/ruff format --check relay tests loadtests

format: $(STAMP)
	$(BIN)/ruff check --fix relay tests loadtests
	$(BIN)/ruff format relay tests loadtests

bench: $(STAMP)
	$(BIN)/python -m tests.bench.bench_eval

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
