# The two set-up commands are `make demo` and `make test`; both create .venv on
# first use and reinstall only when pyproject.toml changes (stamp file).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.stamp-install
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_LOGGING_LEVEL ?= WARNING

.PHONY: demo test reliability lint ui bench clean install

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nnpipe demo

test: $(STAMP)
	$(BIN)/ruff check nnpipe flows tests benchmarks examples
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

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
	rm -rf $(VENV) nnpipe-work mlflow.db mlartifacts mlruns .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
