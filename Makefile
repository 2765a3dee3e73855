# Two commands do everything on a fresh clone: `make synth` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: synth test test-fast lint bench emulate twin twin-deps reference clean
ENV ?= dev

$(PY_STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (tomllib)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

synth: $(PY_STAMP)
	$(PY) main.py

test: $(PY_STAMP) $(NODE_STAMP) twin-deps lint
	$(PY) -m pytest

# The quality gate (also run by `make test` and, through .pre-commit-config.yaml, on commit):
# formatting and lint at 120 columns, and mypy --strict on components/, environments/, main.py.
lint: $(PY_STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Everything except the Terraform, emulator and twin layers, and the test that runs this
# selection again on a copy of the project (tests/test_readme_steps.py reads this line).
test-fast: $(PY_STAMP)
	$(PY) -m pytest -m 'not terraform and not emulator and not twin and not project_copy'

# Debian's etcd, NATS, iptables, iproute2, conntrack and a venv with the pinned ai-dynamo
# (as root on Linux with apt-get; elsewhere it says why and the twin layer skips).
twin-deps: $(PY_STAMP)
	$(PY) -m tests.twin.install

# One environment's stack as the twin: `make twin ENV=staging`; up until Ctrl-C.
twin: $(PY_STAMP) twin-deps
	$(PY) -m tests.twin --env $(ENV)

bench: $(PY_STAMP)
	$(PY) scripts/bench.py

emulate: $(PY_STAMP) $(NODE_STAMP)
	$(PY) -m tests.emulator.emulate

reference: $(PY_STAMP)
	$(PY) -m environments.reference

clean:
	rm -rf $(VENV) node_modules cdktf.out .pytest_cache
