# One entry point for chores. Each target sets up the virtualenv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
# The demo needs only the package itself; the dev extras (pytest, Playwright, linters) are
# for test and lint. A dev install satisfies the demo too.
RUNTIME_STAMP := $(VENV)/.installed

.PHONY: demo test lint bench fuzz soak tracker clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml requirements-dev.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP) $(RUNTIME_STAMP)

$(RUNTIME_STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(RUNTIME_STAMP)

demo: $(RUNTIME_STAMP)
	$(BIN)/footfall demo

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/python -m bench.collector
	$(BIN)/python -m bench.pipeline --events 5200000 --memory-limit 3GB
	$(BIN)/python -m bench.shards
	$(BIN)/python -m bench.lifecycle --events 1000000
	$(BIN)/python -m bench.accesslog
	$(BIN)/python -m bench.render

# The adversarial suite's long modes (docs/guarantees.md): not part of `make test`.
fuzz: $(STAMP)
	FOOTFALL_LONG=1 $(BIN)/python -m pytest -q tests/test_adversarial_collector.py \
		tests/test_adversarial_pipeline.py tests/test_collector_process.py $(PYTEST_ARGS)

soak: $(STAMP)
	$(BIN)/python -m bench.soak

tracker:
	$(PYTHON) collector/static/build.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
