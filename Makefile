# `make build` and `make test` each create .venv when it is missing (a second run reuses it).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.pocketvision-installed

.PHONY: build test test-fast corpus fuzz clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

build: $(STAMP)
	$(BIN)/pocket build skipnet_m --target android -o dist

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The unit and golden tiers (tests/unit, tests/golden: each folder gives its tests their marker,
# tests/conftest.py), under 3 minutes; `make test` runs every tier (+ export, reliability).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "unit or golden"

# Every user-model family of tests/fixtures/user_models/corpus built for --target all
# (~1 min per model): writes docs/corpus.json and the README's pass-rate table.
corpus: $(STAMP)
	$(BIN)/pocket doctor --corpus

# Longer campaigns: hypothesis at 3000 examples per property, then mutated artifact bytes fed
# to each runtime loader in subprocesses (crashes counted). FUZZ_CASES mutations per artifact.
FUZZ_CASES ?= 400
FUZZ_DIR   ?= .fuzz
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q -p no:cacheprovider --hypothesis-show-statistics tests/reliability/test_fuzz.py
	@test -f $(FUZZ_DIR)/toy-desktop/manifest.json || $(BIN)/python tests/tools/make_toy_bundle.py $(FUZZ_DIR)/toy-desktop > $(FUZZ_DIR).log 2>&1
	$(BIN)/python tests/tools/fuzz_loaders.py $(FUZZ_DIR)/toy-desktop $(wildcard dist/*-android) --cases $(FUZZ_CASES) --keep $(FUZZ_DIR)/crashes

clean:
	rm -rf dist .pytest_cache .fuzz .fuzz.log .hypothesis
