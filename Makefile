# `make build` and `make test` each create .venv when it is missing (a second run reuses it).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.pocketvision-installed

.PHONY: build test test-fast clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

build: $(STAMP)
	$(BIN)/pocket build skipnet_m --target android -o dist

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "unit or golden"

clean:
	rm -rf dist .pytest_cache
