# Deep Generative Models, Derived and Run.
#   make book   build the whole book at full size  -> _build/html/index.html
#   make test   ruff + every test, derivation check, a quick build of the book and a browser check
#   make test-fast   ruff + the tests not marked slow, for the inner loop
# Every target sets up what it needs from scratch and skips what is already current.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.installed
MATHJAX := _vendor/mathjax/tex-mml-chtml.js
JB_FLAGS := -n -W --keep-going

.PHONY: book test test-fast lint derivations data mathjax browser setup lock bench clean

book: setup
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	@echo "The book is at $(CURDIR)/_build/html/index.html"

test: setup browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# The inner loop: ruff and the tests not marked slow (no book build, browser or subprocess).
test-fast: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow"

derivations: $(READY)
	@set -e; for script in derivations/[!_]*.py; do $(BIN)/python $$script; done

lint: $(READY)
	$(BIN)/ruff check .

setup: $(READY) data mathjax

# The virtual environment, rebuilt when the lock file or the package metadata changes.
$(READY): requirements-lock.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --disable-pip-version-check -r requirements-lock.txt
	$(BIN)/pip install -qq --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# Real MNIST: fetched once, verified (SHA-256) on every run.
data: $(READY)
	$(BIN)/python -m dgm.data

# MathJax 3 served from the book itself, so formulas render with no network.
mathjax: $(MATHJAX)

$(MATHJAX): $(READY)
	$(BIN)/python _ext/offline_math.py .

# A Chromium or Chrome for the browser test (Playwright drives it; never `playwright install`):
# tools/find-chromium finds one, or installs Debian's as root, or says what to install.
browser:
	@tools/find-chromium >/dev/null

# Rewrite the lock file from the current environment (after a deliberate upgrade).
lock: $(READY)
	{ sed -n '1,3p' requirements-lock.txt; $(BIN)/pip freeze --all --exclude-editable | grep -v "^pip=="; } > requirements-lock.txt.new
	mv requirements-lock.txt.new requirements-lock.txt

bench: setup
	@set -e; for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script; done

# Removes the build, its execution cache and every stored result (trained weights, evaluations).
clean:
	rm -rf _build
