# Pixel Wand — every target makes its own virtualenv in .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint format fuzz bench bench-api bench-media bench-optimise bench-fairness slow-steps soak schema clean

# make fuzz: examples per operation and seed ("random", or a number to replay a run)
FUZZ_EXAMPLES ?= 100
FUZZ_SEED ?= random

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[video]'
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.runtime

## run: migrate and serve on http://127.0.0.1:8000 (SQLite + local storage under ./data)
run: $(VENV)/.runtime
	$(BIN)/pixelwand serve

## test: the whole suite (every backend pair; see README)
test: $(VENV)/.dev
	$(BIN)/pytest -q

## fuzz: schemathesis on REST (OpenAPI) and GraphQL, both backends (docs/openapi-and-fuzzing.md)
fuzz: $(VENV)/.dev
	PIXELWAND_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) PIXELWAND_FUZZ_SEED=$(FUZZ_SEED) \
		$(BIN)/pytest -q -s -m fuzz

lint: $(VENV)/.dev
	$(BIN)/ruff check pixelwand schema compat_rest tests bench
	$(BIN)/ruff format --check pixelwand schema compat_rest tests bench
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

format: $(VENV)/.dev
	$(BIN)/ruff check --fix pixelwand schema compat_rest tests bench
	$(BIN)/ruff format pixelwand schema compat_rest tests bench

## schema: regenerate schema.graphql from the code
schema: $(VENV)/.runtime
	$(BIN)/pixelwand export-schema -o schema.graphql

bench: $(VENV)/.dev
	$(BIN)/python bench/bench_imaging.py

## bench-optimise: perceptual quality vs fixed quality, re-scored by the reference scorer
bench-optimise: $(VENV)/.dev
	$(BIN)/python bench/bench_optimise.py

bench-api: $(VENV)/.dev
	$(BIN)/python bench/bench_api.py

## bench-media: finalize with and without facts, facts latency, posters, attention crops
bench-media: $(VENV)/.dev
	$(BIN)/python bench/bench_media.py

## bench-fairness: another organization's latency while one key sends the heaviest allowed queries
bench-fairness: $(VENV)/.dev
	$(BIN)/python bench/bench_fairness.py

## slow-steps: event-loop steps over 5 ms (asyncio debug) under bench-fairness's attack, and where
slow-steps: $(VENV)/.dev
	$(BIN)/python bench/slow_steps.py --collections 10

## soak: minutes of mixed load plus one abusive key against a live server (not in CI)
soak: $(VENV)/.dev
	$(BIN)/python bench/soak.py --minutes $(or $(MINUTES),3)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
