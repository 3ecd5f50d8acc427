# Two entry points (see README): `make demo` and `make test`. Both set up .venv first if needed.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint
setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/lmeec demo

test: setup
	$(PY) -m pytest -q -rs

lint: setup
	$(VENV)/bin/ruff check lmeec tests benchmarks
