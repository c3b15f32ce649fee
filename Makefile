# kubedrill developer entry points. Everything runs from the virtualenv at .venv.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := $(shell sed -n 's/^uv==//p' constraints.txt)
EXTRAS ?= load,service,gpu,dev
export UV_CACHE_DIR ?= $(HOME)/.cache/kubedrill/uv

.PHONY: install test unit lint demo bench-load bench-sandbox bench-verdicts bench-gpu bench-report bench-observe bench-chaos clean

$(BIN)/kubedrill: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --python $(BIN)/python -q -c constraints.txt -e ".[$(EXTRAS)]"
	@touch $@

# Debian packages the tests and benchmarks run for real: Prometheus, wrk, and Chromium
# (opens the HTML report headless: console errors, panels drawn, a screenshot).
SYSTEM_TOOLS := /usr/bin/prometheus /usr/bin/wrk /usr/bin/chromium
$(SYSTEM_TOOLS):
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends prometheus wrk chromium >/dev/null

install: $(BIN)/kubedrill $(SYSTEM_TOOLS) ## .venv with the kubedrill command; Prometheus, wrk and Chromium

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

bench-report: install ## 1 h report render/size, headless Chromium, diff, capacity knee -> reports/bench/report.json
	$(BIN)/python benchmarks/bench_report.py

bench-observe: sandbox-build ## event lag (1,000 pods), 10 watch cuts vs the audit log, conformance -> reports/bench/observe.json
	$(BIN)/python benchmarks/bench_observe.py

bench-verdicts: sandbox-build ## broken-evidence battery -> reports/bench/verdicts.json
	$(BIN)/python benchmarks/bench_verdicts.py

bench-chaos: sandbox-build ## SIGKILL trials, blast radius (Hypothesis vs the audit log), drains under load, GPU levels, rollback time -> reports/bench/chaos.json
	$(BIN)/python benchmarks/bench_chaos.py

bench-gpu: install ## every gpu_bench suite + burner levels -> reports/bench/gpu.json (CPU: device: cpu)
	timeout 900 $(BIN)/python benchmarks/bench_gpu.py

.PHONY: sandbox-build sandbox-up sandbox-down
sandbox-build: install ## build (or reuse) the sandbox's upstream binaries; 15-35 min cold
	$(BIN)/python -m kubedrill.sandbox.build

sandbox-up: sandbox-build ## local control plane + fake GPU nodes; prints `export KUBECONFIG=...`
	$(BIN)/kubedrill sandbox up

sandbox-down: ## stop every sandbox process and remove its state
	$(BIN)/kubedrill sandbox down

bench-sandbox: sandbox-build ## warm-up, 1,000 pods, idle CPU -> reports/bench/sandbox.json
	$(BIN)/python benchmarks/bench_sandbox.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
