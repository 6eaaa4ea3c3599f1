# Mini-Dropbox: `make run` starts the whole system, `make test` checks it.
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= ./data
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --timeout 300 -q
# The part of the suite `make test` runs a second time on PostgreSQL when
# MINIDROPBOX_TEST_POSTGRES_URL is set (`make test-postgres` runs all of it there).
# Files, versions, trash and moves; the journal; accounts; pg_dump backups. (Not the 1 GiB
# memory test: it measures the API process, not the database.)
PG_TESTS ?= tests/integration/test_files.py tests/integration/test_changes.py \
            tests/integration/test_auth.py tests/integration/test_backup_failures.py \
            --deselect tests/integration/test_files.py::test_api_memory_stays_flat_for_1_gib

.PHONY: run test test-postgres lint unit fmt bench soak fuzz clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/minidropbox server cluster --data $(DATA)

# First pass on SQLite (plus the tests that need PostgreSQL itself, when it is there), then
# a representative part again with every server on PostgreSQL.
test: $(STAMP) lint
	MINIDROPBOX_TEST_DATABASE=sqlite $(PYTEST) tests
	if [ -n "$$MINIDROPBOX_TEST_POSTGRES_URL" ]; then $(PYTEST) $(PG_TESTS); fi

test-postgres: $(STAMP)
	test -n "$$MINIDROPBOX_TEST_POSTGRES_URL" || { echo "set MINIDROPBOX_TEST_POSTGRES_URL"; exit 2; }
	$(PYTEST) tests

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
	if [ -n "$$MINIDROPBOX_TEST_POSTGRES_URL" ]; then $(MAKE) test-postgres; fi

fuzz: $(STAMP)
	MINIDROPBOX_FUZZ_EXAMPLES=1000 $(BIN)/python -m pytest -q --timeout 3600 tests/security/test_fuzz.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
