# Two commands do all the set-up on a fresh machine:
#   make example   serve examples/app.py on http://127.0.0.1:8000 (JWT sessions, no database)
#   make test      install everything the tests need, then run the whole suite
#   make docs      build the documentation site into site/ (any warning fails it)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: example test lint docs docs-serve screenshots bench fuzz install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

example: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[examples]'
	$(BIN)/python examples/app.py

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
	@command -v chromium >/dev/null 2>&1 || sh scripts/install-chromium.sh
	@test -n "$$DATABASE_URL" || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || sh scripts/install-postgresql.sh

test: install-test
	$(BIN)/python -m pytest

lint: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy --strict asgi_session tests docs/samples

# MkDocs 2 is announced as incompatible; the notice about it is not a warning about the site.
docs: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

# Screenshots of the built-in pages for the documentation, from the running example.
screenshots: install-test
	$(BIN)/python scripts/screenshots.py docs/images

# Property-based tests at full strength: 100,000 random examples per property.
fuzz: install-test
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests/test_fuzz.py

bench: install-test
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV) site tests/node/node_modules .mypy_cache .pytest_cache .ruff_cache .hypothesis
