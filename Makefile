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

# 20 s of trading (about 25 s in all, after the install) shows every bot at
# work and keeps a first impression short; `paperx demo` alone runs a minute.
demo: $(BIN)/.installed
	$(BIN)/paperx demo --duration 20

test: $(BIN)/.installed
	$(BIN)/python -m pytest

# Every benchmark (a few minutes), written as BENCHMARKS.md.
bench: $(BIN)/.installed
	$(BIN)/paperx bench all

lint: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet ruff mypy
	$(BIN)/ruff check exchange clients replay bench tests
	$(BIN)/ruff format --check exchange clients replay bench tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
