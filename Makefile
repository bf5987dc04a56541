# Everything starts from a fresh clone: `make demo` and `make test` do their own setup.
# Needs Python 3.11+, git and make; Node.js 22+ (20 works, with an end-of-life warning) for the CDK.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
PYTEST := $(BIN)/pytest -n 2
VENV_313 := .venv-3.13
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: setup demo test lint typecheck unit functional infra tests tests-3.13 synth bench clean

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; set PYTHON=python3.x")'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --extra demo --python $(PYTHON)
	@touch $@

setup: $(VENV)/.synced

demo: setup
	$(BIN)/quota-monitor demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/vulture

typecheck: setup
	$(BIN)/mypy

# One kind of test each, for a quicker loop while working.
unit: setup
	$(PYTEST) tests/unit

functional: setup
	$(PYTEST) tests/functional

infra: setup
	$(PYTEST) tests/infra

# All three kinds in one run, with one coverage report over lambdas, src and infra; fails when a
# test fails or the total falls under [tool.coverage.report] fail_under in pyproject.toml.
tests: setup
	$(PYTEST) --cov --cov-report=term tests/unit tests/functional tests/infra

# The unit and infra tests again under Python 3.13 (the closest here to the Lambda runtime), in
# .venv-3.13: python3.13 on PATH if it runs, else pyenv's versions/3.13.*; skipped, with a line
# saying so, on a machine without one.
tests-3.13: setup
	@py=$$(python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null); \
	if [ -z "$$py" ]; then \
		root=$$(pyenv root 2>/dev/null || echo "$${PYENV_ROOT:-$$HOME/.pyenv}"); \
		for candidate in $$(ls -d "$$root"/versions/3.13.*/bin/python3.13 2>/dev/null | sort -V); do \
			"$$candidate" -c '' 2>/dev/null && py=$$candidate; \
		done; \
	fi; \
	if [ -z "$$py" ]; then \
		echo "tests-3.13: SKIPPED, no Python 3.13 found (python3.13 on PATH, or pyenv's versions/3.13.*)"; \
		exit 0; \
	fi; \
	echo "tests-3.13: the unit and infra tests under $$py, in $(VENV_313)"; \
	UV_PROJECT_ENVIRONMENT=$(VENV_313) $(UV) sync --locked --quiet --python "$$py" && \
	$(VENV_313)/bin/pytest -n 2 tests/unit tests/infra

test: lint typecheck tests tests-3.13

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
	$(BIN)/python -m bench.targets200
	$(BIN)/python -m bench.freshness
	$(BIN)/python -m bench.endpoint
	$(BIN)/python -m bench.archive

clean:
	rm -rf $(VENV) $(VENV_313) $(TOOLS) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache .coverage
