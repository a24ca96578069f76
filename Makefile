# Two commands a newcomer needs: `make test` (and, later, `make demo`).
# Both create .venv when it is missing and install what they need into it.

PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch is installed first so that the project's range (torch>=2.4) accepts it
# instead of pulling the CUDA wheels. On a CUDA machine: make test TORCH_SPEC=torch
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
PIP := $(VENV)/bin/python -m pip

.PHONY: install test clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

test: install
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
