# The README's two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# relay with the test and load-test dependencies (make test); relay and what running needs (make run)
STAMP  := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
BROWSER_DEPS := tests/browser/node_modules/.installed

.PHONY: run test lint format bench clean browser-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,loadtest]'
	touch $(STAMP)

# What running needs, not the test dependencies (those were 226 MB); a .venv that `make test` made
# already has it all.
$(RUN_STAMP): pyproject.toml
	@if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ]; then touch $(RUN_STAMP); else \
		[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV); \
		$(BIN)/python -m pip install --quiet --upgrade pip && \
		$(BIN)/python -m pip install --quiet -e . && touch $(RUN_STAMP); fi

# relay serve prints the URL, the demo keys and commands to try whenever it serves the demo environment.
run: $(RUN_STAMP)
	$(BIN)/relay serve

# The browser SDKs for tests/integration/test_browser.py (it skips, saying so, without them or Chromium).
$(BROWSER_DEPS): tests/browser/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error && touch $(BROWSER_DEPS); \
	else echo "npm not found: the browser test will be skipped"; fi

browser-deps: $(BROWSER_DEPS)

test: $(STAMP) browser-deps
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
