# Two entry points: `make demo` (main analysis on the shipped default model) and
# `make test` (lint, types, the whole test suite). Each builds its own .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch; a bare `torch` would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,notebooks,distributed]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/mesainterp demo --out runs/demo

test: $(STAMP)
	bash scripts/test.sh

clean:
	rm -rf $(VENV) runs
