# Two commands on a fresh machine with Python 3.11 (no root, no Docker):
#   make run    set up, bring the embedded local stack and the streams up, and open the cockpit on them
#   make test   set up, then run the whole test suite (what CI runs)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "k2tui needs Python 3.11 or newer; set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/k2tui demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest

bench: setup
	$(BIN)/k2tui bench serde
	$(BIN)/k2tui bench stack
	$(BIN)/k2tui bench streams
	$(BIN)/k2tui bench consumer
	$(BIN)/k2tui bench api
	$(BIN)/k2tui bench freshness
	$(BIN)/k2tui bench tui

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
