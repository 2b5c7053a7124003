# The two commands a fresh machine needs: `make demo` and `make test`.
# Each creates its own environment (.venv for mlgen, .tools for the linters) and installs what
# it needs; both are safe to re-run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
export PATH := $(CURDIR)/$(TOOLS)/bin:$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: demo test tools golden lint typecheck docs bench clean

$(BIN)/.installed-dev: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip uninstall --quiet --yes mlgen 2>/dev/null || true  # the distribution was renamed mlgen-pipelines
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(BIN)/.installed-demo: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip uninstall --quiet --yes mlgen 2>/dev/null || true  # the distribution was renamed mlgen-pipelines
	$(BIN)/pip install --quiet -e '.[runtime]'
	touch $@

demo: $(BIN)/.installed-demo
	$(BIN)/python scripts/demo.py

test: $(BIN)/.installed-dev tools
	$(BIN)/pytest $(PYTEST_ARGS)

tools:
	bash scripts/install-tools.sh

golden: $(BIN)/.installed-dev
	$(BIN)/python -m tests.golden.refresh

lint: $(BIN)/.installed-dev
	$(BIN)/ruff check generator models tests benchmarks

typecheck: $(BIN)/.installed-dev
	$(BIN)/python scripts/typecheck.py

docs: $(BIN)/.installed-dev
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) $(TOOLS) node_modules demo site
