# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv (Python >= 3.11) on first use and installs paperx into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# 20 s of trading (about 30 s in all) is enough to see every bot act and a few
# liquidations; `paperx demo` alone runs the full minute.
demo: $(BIN)/.installed
	$(BIN)/paperx demo --duration 20

test: $(BIN)/.installed
	$(BIN)/python -m pytest

bench: $(BIN)/.installed
	$(BIN)/paperx bench core

lint: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet ruff mypy
	$(BIN)/ruff check exchange clients replay bench tests
	$(BIN)/ruff format --check exchange clients replay bench tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
