# batchbridge — the two commands a new user needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test lint demo demo-fail demo-compose bench chaos env clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

env: $(STAMP)

## make test: create .venv if missing, install, lint, type-check and run the whole suite.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -q -p no:cacheprovider

## make demo: the whole loop end to end on the embedded local environment.
demo: $(STAMP)
	$(PY) -m scripts.demo $(DEMO_ARGS)

## make demo-fail: the same, with one input missing so its job fails the pipeline.
demo-fail: $(STAMP)
	$(PY) -m scripts.demo --fail $(DEMO_ARGS)

## make demo-compose: the same against `docker compose up` (needs a Docker engine).
demo-compose: $(STAMP)
	docker compose up --build --detach --wait
	$(PY) -m scripts.demo --endpoint http://127.0.0.1:4566 $(DEMO_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info

## make bench: batchbridge vs the tutorial's design, side by side (a few minutes); writes benchmarks/RESULTS.md.
bench: $(STAMP)
	$(PY) -m benchmarks

## make chaos: 500 randomised runs of the whole loop with faults; non-zero exit on any violation.
chaos: $(STAMP)
	$(PY) -m integration_tests.chaos --runs 500
