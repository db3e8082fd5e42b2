# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/lynkr

.PHONY: run test lint typecheck test-sqlite test-postgres install install-dev clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(RUN_STAMP)

# The benchmark's extra: uvloop, httptools and granian for the ASGI server comparison (bench/README.md).
$(BENCH_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $@ $(DEV_STAMP) $(RUN_STAMP)

install: $(RUN_STAMP)
install-dev: $(DEV_STAMP)

## make run: install, migrate, serve on HOST:PORT (default 127.0.0.1:8080) under Daphne, in the foreground.
run: install
	$(BIN)/lynkr migrate
	exec $(BIN)/lynkr serve

## make test: lint, types, import contracts, the whole suite on SQLite, then the DB tests on PostgreSQL.
test: install-dev lint typecheck test-sqlite test-postgres

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck:
	$(BIN)/mypy .

# The whole suite; coverage gate (pyproject [tool.coverage]): the pure translation modules at 100% branch coverage.
test-sqlite:
	HYPOTHESIS_STORAGE_DIRECTORY=/tmp/lynkr-hypothesis $(BIN)/pytest --cov --cov-report=term

# The model/DB tests again on PostgreSQL. Skipped loudly when no server answers, unless
# LYNKR_TEST_SERVICES=required (CI), which makes a missing server a failure.
test-postgres:
	@if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
		LYNKR_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -m django_db -p no:cacheprovider; \
	elif [ "$$LYNKR_TEST_SERVICES" = "required" ]; then \
		echo "FAIL: PostgreSQL is not answering on 127.0.0.1:5432 and LYNKR_TEST_SERVICES=required"; exit 1; \
	else \
		echo "SKIPPED: PostgreSQL is not answering on 127.0.0.1:5432 - the DB tests ran on SQLite only"; \
	fi

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

## make bench: the hot-path benchmark against LiteLLM (bench/README.md; 30-45 minutes, on a quiet machine).
bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py
