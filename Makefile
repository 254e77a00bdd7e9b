# ragged: `make test` and `make bench` set everything up themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test bench lint test-all soak clean
.PHONY: docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# pytest exits 5 when it collects no tests: treat that as a failure.
test: $(STAMP)
	@$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc

# The API reference, from the docstrings, with the README as its front page:
# build/docs/index.html.  Nitpicky, warnings are errors: a broken cross-reference fails.
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	rm -rf build/docs
	$(PY) -m sphinx -n -W --keep-going -q -b html docs build/docs
	@echo "docs: build/docs/index.html"

bench: $(STAMP)
	$(PY) -m ragged.bench

lint: $(STAMP)
	$(PY) -m ruff check ragged tests benchmarks
	$(PY) -m ruff format --check ragged tests benchmarks
	$(PY) -m mypy

# Run the suite on every supported interpreter found on this machine.
test-all:
	@set -e; for v in 3.11 3.12 3.13; do \
	  py=$$(command -v python$$v || ls $$HOME/.pyenv/versions/$$v.*/bin/python$$v 2>/dev/null | tail -1); \
	  if [ -z "$$py" ]; then echo "python$$v: not found, skipped"; continue; fi; \
	  echo "=== $$py"; $(MAKE) --no-print-directory test PYTHON=$$py VENV=.venv-$$v; \
	done

DURATION ?= 600
soak: $(STAMP)
	$(PY) -m ragged.bench.soak --duration $(DURATION)

clean:
	rm -rf $(VENV) .venv-3.* build *.egg-info .pytest_cache
