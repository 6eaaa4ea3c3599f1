# Mini-Dropbox: `make run` starts the whole system, `make test` checks it.
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= ./data
PYTEST_WORKERS ?= 2

.PHONY: run test lint unit fmt bench soak fuzz clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/minidropbox server cluster --data $(DATA)

test: $(STAMP) lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --timeout 300 -q tests

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

soak: $(STAMP)
	MINIDROPBOX_SOAK=1 $(BIN)/python -m pytest -q -m slow --timeout 3600 tests

fuzz: $(STAMP)
	MINIDROPBOX_FUZZ_EXAMPLES=1000 $(BIN)/python -m pytest -q --timeout 3600 tests/security/test_fuzz.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
