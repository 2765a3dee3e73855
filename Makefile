# Two commands do everything on a fresh clone: `make synth` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: synth test test-fast bench emulate reference clean

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

test: $(PY_STAMP) $(NODE_STAMP)
	$(PY) -m pytest

# Everything except the Terraform and emulator layers.
test-fast: $(PY_STAMP)
	$(PY) -m pytest -m 'not terraform and not emulator'

bench: $(PY_STAMP)
	$(PY) scripts/bench.py

emulate: $(PY_STAMP) $(NODE_STAMP)
	$(PY) -m tests.emulator.emulate

reference: $(PY_STAMP)
	$(PY) -m environments.reference

clean:
	rm -rf $(VENV) node_modules cdktf.out .pytest_cache
