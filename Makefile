# Everything starts from a fresh clone: `make demo` and `make test` do their own setup.
# Needs Python 3.11+, git and make; Node.js 22+ (20 works, with an end-of-life warning) for the CDK.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: setup demo test lint typecheck unit synth bench clean

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; set PYTHON=python3.x")'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --python $(PYTHON)
	@touch $@

setup: $(VENV)/.synced

demo: setup
	$(BIN)/quota-monitor demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -n 2

test: lint typecheck unit

# The CDK CLI pinned in package-lock.json; `npm ci` again only when the lock changes.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

# Synthesizes the stack (cdk-nag checks included) into cdk.out/, offline. Settings: cdk.json, or
# CDK_ARGS='-c scheduleMinutes=5 -c alertEmails=ops@example.com'.
synth: setup node_modules/.package-lock.json
	npx cdk synth --no-notices --quiet $(CDK_ARGS)
	@echo "Synthesized to cdk.out/"

# The monitor at 10,000 keys against its targets and the naive way, every region at once, and how
# soon a crossing is alerted with the fast path; writes docs/benchmarks.md.
bench: setup
	$(BIN)/python -m bench
	$(BIN)/python -m bench.fleet
	$(BIN)/python -m bench.freshness

clean:
	rm -rf $(VENV) $(TOOLS) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
