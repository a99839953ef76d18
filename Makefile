# The two set-up commands are `make demo` and `make test`; both create .venv on
# first use and reinstall only when pyproject.toml, the lock file or this file changes (stamp
# file). The exact versions come from requirements/test.lock, installed with uv:
# 11 s instead of pip's 110 s from a clean clone (see README, "Installing"). uv writes
# no bytecode, and with PYTHONDONTWRITEBYTECODE set (as in CI) Python never does:
# every process would compile mlflow, prefect and the rest from source (9 s instead
# of 3.8 s to import them), so the install compiles them once. compileall skips
# what is up to date; its status is ignored because some packages ship modules
# for newer Pythons (whenever/_typing_312.py) that no import here reaches.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.stamp-install
LOCK   := requirements/test.lock
UV_VERSION := 0.13.9
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_LOGGING_LEVEL ?= WARNING

.PHONY: demo test reliability container-test lint ui bench clean install lock

install: $(STAMP)

$(STAMP): pyproject.toml $(LOCK) Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r $(LOCK) -e .
	@$(BIN)/python -m compileall -q -q -j 0 $(VENV)/lib >/dev/null || true
	@touch $(STAMP)

# Re-resolve the lock after changing a dependency in pyproject.toml (tests/test_lock.py
# fails while the lock and pyproject.toml disagree).
lock:
	@test -x $(BIN)/uv || $(MAKE) install
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--custom-compile-command "make lock" --quiet -o $(LOCK)

demo: $(STAMP)
	$(BIN)/nnpipe demo

test: $(STAMP)
	$(BIN)/ruff check nnpipe flows tests benchmarks examples
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The image built and docker/compose.yaml's services run as podman containers, with
# the pipeline and fault tests run against them (docker/container-test.sh).
container-test: $(STAMP)
	PYTHON=$(BIN)/python docker/container-test.sh

# What happens on bad input, signals and unavailable services (also part of `make test`).
reliability: $(STAMP)
	$(BIN)/python -m pytest -q tests/reliability $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check nnpipe flows tests benchmarks examples
	$(BIN)/ruff format --check nnpipe flows tests benchmarks examples

# The MLflow UI over the store `make demo` writes (./mlflow.db, ./mlartifacts).
ui: $(STAMP)
	@echo "MLflow UI: http://127.0.0.1:5000/#/?workflowType=machine_learning (Model training)"
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db \
		--default-artifact-root ./mlartifacts --host 127.0.0.1 --port 5000

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	@if test -x $(BIN)/nnpipe; then $(BIN)/nnpipe server stop; fi
	rm -rf $(VENV) nnpipe-work mlflow.db mlartifacts mlruns .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
