# Pixel Wand — every target makes its own virtualenv in .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint format bench bench-api bench-optimise schema clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
