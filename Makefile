# Two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv when it is missing and install what they need into it.

PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch is installed first so that the project's range (torch>=2.4) accepts it
# instead of pulling the CUDA wheels. On a CUDA machine: make test TORCH_SPEC=torch
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
# Options of `archive-colorizer demo`, e.g. DEMO_ARGS="--photos my-photos/ --archive my-scans/"
DEMO_ARGS ?=
PIP := $(VENV)/bin/python -m pip

.PHONY: install lint test demo docs clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[test,demo]"
	touch $@

install: $(VENV)/.installed

# Lint, format and type checks (settings in pyproject.toml); `make test` runs them first.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/python -m pytest --durations=15 $(PYTEST_ARGS)

# Prepare, train and colorize on real photographs on this machine (a local Ray); see README.
demo: install
	$(VENV)/bin/archive-colorizer demo $(DEMO_ARGS)

# Rewrite the option tables in docs/*.md from the command line's own parser.
docs: install
	$(VENV)/bin/python -m archive_colorizer.docs

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
