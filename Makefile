# ragged: `make test` and `make bench` set everything up themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test test-debug bench lint test-all soak clean
.PHONY: docs results

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# pytest exits 5 when it collects no tests: treat that as a failure.
test: $(STAMP)
	@$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc

# The suite again with RAGGED_DEBUG=1: every P status transition is checked, and every runtime
# lock is ranked (ragged/_core/_lockrank.py): a thread about to wait for a lock out of rank order
# raises LockOrderError at once.  About as long as `make test` (5 min on 2 busy cores, 3.11).
test-debug: $(STAMP)
	@RAGGED_DEBUG=1 $(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc

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

# benchmarks/RESULTS.md, regenerated: every benchmark with goals, on this build and (when a
# free-threaded CPython is found, see .ci/ft-python) on that one with the GIL off; ~25 minutes.
# The preemption benchmark also runs on a GIL CPython 3.12+ when .ci/new-python finds one
# (NEW_PYTHON, python3.12+ on PATH or pyenv's), in its own virtualenv .venv-new.
results: $(STAMP)
	@ft=""; if FT_PYTHON="$(FT_PYTHON)" .ci/ft-python >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory install-ft FT_PYTHON="$(FT_PYTHON)" && ft="--ft $(FT_PY)"; \
	else echo "results: no free-threaded CPython found (see .ci/ft-python): measuring this build only"; fi; \
	also=""; if new=$$(NEW_PYTHON="$(NEW_PYTHON)" .ci/new-python 2>/dev/null); then \
	  $(MAKE) --no-print-directory install PYTHON="$$new" VENV=.venv-new && also="--also .venv-new/bin/python"; \
	else echo "results: no GIL CPython 3.12+ found (NEW_PYTHON): the preemption benchmark runs on this build only"; fi; \
	$(PY) -m ragged.bench.results $$ft $$also

lint: $(STAMP)
	$(PY) -m ruff check ragged tests benchmarks
	$(PY) -m ruff format --check ragged tests benchmarks
	$(PY) -m mypy

# Run the suite on every supported interpreter found on this machine: the first
# candidate that runs (a pyenv shim for a version that is not active does not).
test-all:
	@set -e; for v in 3.11 3.12 3.13; do \
	  py=""; \
	  for cand in $$(command -v python$$v) $$(ls $$HOME/.pyenv/versions/$$v.*/bin/python$$v 2>/dev/null | tail -1); do \
	    if "$$cand" -c "import sys" >/dev/null 2>&1; then py=$$cand; break; fi; \
	  done; \
	  if [ -z "$$py" ]; then echo "python$$v: not found, skipped"; continue; fi; \
	  echo "=== $$py"; $(MAKE) --no-print-directory test PYTHON=$$py VENV=.venv-$$v; \
	done

DURATION ?= 600
soak: $(STAMP)
	$(PY) -m ragged.bench.soak --duration $(DURATION)

clean:
	rm -rf $(VENV) .venv-3.* build *.egg-info .pytest_cache

# ---------------------------------------------------------------- free-threaded suite
# `make test-ft`: the whole suite on a free-threaded CPython (PEP 703) with the GIL really off.
# The interpreter: FT_PYTHON=..., else the first python3.14t/python3.13t on PATH, else the one
# ../shared/tools/python-ft cached (.ci/ft-python says how to get one when none is found).
# Its venv (.venv-ft) is remade when the interpreter changes.  Install order matters on 3.13t:
# cffi<2 first (cffi 2 does not build there; atomics needs it), and binary wheels only for the
# packages that would otherwise build from source (hypothesis > 6.155 needs Rust; matplotlib
# 3.11.2 has no cp313t wheel, so pip takes the newest release that has one).  PYTHON_GIL=0 always:
# cffi's extension would turn the GIL back on.  RAGGED_TEST_FREE_THREADED=1 makes tests/conftest.py
# stop the run at once if the GIL is on anyway; the pytest header shows the interpreter and GIL state.
FT_VENV ?= .venv-ft
FT_PY := $(FT_VENV)/bin/python
FT_ONLY_BINARY := hypothesis,matplotlib,numpy,pillow,contourpy,kiwisolver,fonttools

.PHONY: install-ft test-ft soak-ft clean-ft

install-ft:
	@ft=$$(FT_PYTHON="$(FT_PYTHON)" .ci/ft-python) || exit 1; \
	stamp=$(FT_VENV)/.installed; \
	if [ -f $$stamp ] && [ "$$(cat $$stamp)" = "$$ft" ] && [ $$stamp -nt pyproject.toml ]; then exit 0; fi; \
	echo "test-ft: setting up $(FT_VENV) with $$ft"; \
	rm -rf $(FT_VENV) && "$$ft" -m venv $(FT_VENV) && \
	PYTHON_GIL=0 $(FT_PY) -m pip install -q --upgrade pip && \
	PYTHON_GIL=0 $(FT_PY) -m pip install -q 'cffi<2' && \
	PYTHON_GIL=0 $(FT_PY) -m pip install -q --only-binary $(FT_ONLY_BINARY) -e '.[dev]' && \
	echo "$$ft" > $$stamp

# pytest exits 5 when it collects no tests: a failure, as in `make test`.
test-ft: install-ft
	@PYTHON_GIL=0 RAGGED_TEST_FREE_THREADED=1 $(FT_PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc

# The bounded soak on the free-threaded build (same DURATION as `make soak`).
soak-ft: install-ft
	PYTHON_GIL=0 $(FT_PY) -X gil=0 -m ragged.bench.soak --duration $(DURATION)

clean: clean-ft
clean-ft:
	rm -rf $(FT_VENV)
