# Mini-Dropbox: `make run` starts the whole system, `make test` checks it.
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= ./data
# Three workers on two cores: many tests wait on real timers (health probes, hedges, settle
# times, long polls), and a third worker fills those waits; an idle worker takes tests queued
# for a busy one (worksteal), so no long test is left alone at the end.
PYTEST_WORKERS ?= 3
PYTEST := $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal --timeout 300 -q
# The part of the suite `make test` runs a second time on PostgreSQL when
# MINIDROPBOX_TEST_POSTGRES_URL is set (`make test-postgres` runs all of it there).
# Files, versions, trash and moves; the journal; accounts; pg_dump backups. (Not the large-upload
# memory test: it measures the API process, not the database.)
PG_TESTS ?= tests/integration/test_files.py tests/integration/test_changes.py \
            tests/integration/test_auth.py tests/integration/test_backup_failures.py \
            --deselect tests/integration/test_files.py::test_api_memory_stays_flat_for_a_large_upload

.PHONY: run test test-containers test-postgres lint unit fmt bench soak fuzz chaos clean lock test-tools screenshots

# Exact versions with hashes: requirements.lock is what running needs (the image installs the
# same file), requirements-dev.lock adds the test and lint tools. `make lock` regenerates both
# from pyproject.toml (README, "Dependencies"); `pip check` stops an install whose lock no
# longer satisfies pyproject.toml.
LOCK       := requirements.lock
DEV_LOCK   := requirements-dev.lock
RUN_STAMP  := $(VENV)/.installed-run
UV_VERSION := 0.13.9
define install_locked
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(1)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check >/dev/null || { $(BIN)/python -m pip check; \
	    echo "$(1) does not match pyproject.toml: run make lock"; exit 1; }
endef

$(RUN_STAMP): pyproject.toml $(LOCK)
	$(call install_locked,$(LOCK))
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml $(DEV_LOCK)
	$(call install_locked,$(DEV_LOCK))
	touch $(STAMP) $(RUN_STAMP)

# The lock files from pyproject.toml, after changing a dependency there: locked versions are
# kept where they still fit (`make lock UPGRADE=1` takes the newest of everything). Universal
# (any OS, Python >= 3.11), with the build backend, and hashes of every file. The runtime lock
# is constrained to the dev lock's versions, so both agree.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' \
	    | $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	    --no-header $(if $(UPGRADE),--upgrade) --extra dev -o $(DEV_LOCK) pyproject.toml -
	$(BIN)/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' \
	    | $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	    --no-header -c $(DEV_LOCK) -o $(LOCK) pyproject.toml -

# `make run PORT=8100` moves the API (nodes take the next ports); `make run STORAGE=s3
# S3_URL='s3://bucket/prefix?endpoint=...'` keeps the chunks in a bucket.
run: $(RUN_STAMP)
	$(BIN)/minidropbox server cluster --data $(DATA) $(if $(PORT),--port $(PORT)) \
	    $(if $(STORAGE),--storage $(STORAGE)) \
	    $(if $(S3_URL),--s3-url '$(S3_URL)')

# First pass on SQLite (plus the tests that need PostgreSQL itself, when it is there), then
# a representative part again with every server on PostgreSQL.
test: $(STAMP) lint test-tools
	MINIDROPBOX_TEST_DATABASE=sqlite $(PYTEST) tests
	if [ -n "$$MINIDROPBOX_TEST_POSTGRES_URL" ]; then $(PYTEST) $(PG_TESTS); fi

# The compose stack built and run for real (tests/deploy/test_containers.py; README, "Deploy"),
# as root: Docker, docker-compose and mmdebstrap installed when missing, dockerd started when
# none answers (and stopped after), base images pulled or else made from Debian's packages.
test-containers: $(STAMP)
	MINIDROPBOX_TEST_CONTAINERS=1 deploy/with-docker.sh \
	    $(BIN)/python -m pytest -q -s -n 0 --timeout 3600 tests/deploy/test_containers.py

test-postgres: $(STAMP)
	test -n "$$MINIDROPBOX_TEST_POSTGRES_URL" || { echo "set MINIDROPBOX_TEST_POSTGRES_URL"; exit 2; }
	$(PYTEST) tests

# Real clients the tests drive (WebDAV: litmus, rclone; the web app: chromium through
# chromedriver), from Debian when missing. Each is command:package.
TEST_TOOLS := litmus:litmus rclone:rclone chromium:chromium chromedriver:chromium-driver
test-tools:
	@missing=""; for pair in $(TEST_TOOLS); do command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) \
		|| sudo sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing"; \
	fi

# The README's pictures of the web app, taken by its browser tests.
screenshots: $(STAMP) test-tools
	MINIDROPBOX_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest -q -n 0 tests/browser

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

# Ten clients against `server cluster` while nodes are killed, paused and stopped and the API
# is killed once (make test runs 30 s of it); figures in bench/results/chaos.json.
CHAOS_SECONDS ?= 600
chaos: $(STAMP)
	MINIDROPBOX_CHAOS_SECONDS=$(CHAOS_SECONDS) MINIDROPBOX_CHAOS_RESULTS=bench/results/chaos.json \
	  $(BIN)/python -m pytest -q -s -n 0 --timeout $$(( $(CHAOS_SECONDS) + 1800 )) tests/chaos

# Every operation of /openapi.json, 1,000 generated requests each, spread over the test workers.
fuzz: $(STAMP)
	MINIDROPBOX_FUZZ_EXAMPLES=1000 $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist worksteal \
	    --timeout 3600 tests/security/test_fuzz.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
