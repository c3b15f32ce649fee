# kubedrill developer entry points. Everything runs from the virtualenv at .venv.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := $(shell sed -n 's/^uv==//p' constraints.txt)
EXTRAS ?= load,service,gpu,dev
export UV_CACHE_DIR ?= $(HOME)/.cache/kubedrill/uv

.PHONY: install test unit lint demo bench-load bench-sandbox clean

$(BIN)/kubedrill: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --python $(BIN)/python -q -c constraints.txt -e ".[$(EXTRAS)]"
	@touch $@

install: $(BIN)/kubedrill ## virtualenv at .venv with the kubedrill command

lint: install ## ruff, mypy --strict, import-linter layer contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: install
	$(BIN)/python -m pytest tests/unit -q

test: lint ## everything CI runs
	$(BIN)/python -m pytest -q

demo: install ## the demo suite, writing reports under reports/
	$(BIN)/kubedrill demo

bench-load: install
	$(BIN)/python benchmarks/bench_load.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
