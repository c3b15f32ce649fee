# kubedrill developer entry points. Everything runs from the virtualenv at .venv.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := $(shell sed -n 's/^uv==//p' constraints.txt)
EXTRAS ?= load,service,gpu,dev
export UV_CACHE_DIR ?= $(HOME)/.cache/kubedrill/uv

.PHONY: install test unit lint demo bench-load bench-sandbox bench-verdicts clean

$(BIN)/kubedrill: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --python $(BIN)/python -q -c constraints.txt -e ".[$(EXTRAS)]"
	@touch $@

# Debian packages the tests and benchmarks run for real: Prometheus and wrk.
SYSTEM_TOOLS := /usr/bin/prometheus /usr/bin/wrk
$(SYSTEM_TOOLS):
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends prometheus wrk >/dev/null

install: $(BIN)/kubedrill $(SYSTEM_TOOLS) ## .venv with the kubedrill command; Prometheus and wrk

lint: install ## ruff, mypy --strict, import-linter layer contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: install
	$(BIN)/python -m pytest tests/unit -q

test: lint sandbox-build ## everything CI runs (the sandbox binaries are built first when missing)
	$(BIN)/python -m pytest -q

demo: install ## the demo suite on the sandbox (built and started when missing), reports under reports/
	$(BIN)/kubedrill run --suite ci --sandbox

bench-load: install
	$(BIN)/python benchmarks/bench_load.py

bench-verdicts: sandbox-build ## broken-evidence battery -> reports/bench/verdicts.json
	$(BIN)/python benchmarks/bench_verdicts.py

.PHONY: sandbox-build sandbox-up sandbox-down
sandbox-build: install ## build (or reuse) the sandbox's upstream binaries; ~17 min cold
	$(BIN)/python -m kubedrill.sandbox.build

sandbox-up: sandbox-build ## local control plane + fake GPU nodes; prints `export KUBECONFIG=...`
	$(BIN)/kubedrill sandbox up

sandbox-down: ## stop every sandbox process and remove its state
	$(BIN)/kubedrill sandbox down

bench-sandbox: sandbox-build ## warm-up, 1,000 pods, idle CPU -> reports/bench/sandbox.json
	$(BIN)/python benchmarks/bench_sandbox.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
