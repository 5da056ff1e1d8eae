# The project's vocabulary: `make run`, `make test`, `make lint`, `make bench`.
# Each target sets itself up from nothing but Python 3.11+ and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint format bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("retarget needs Python 3.11+, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# The service with the demo seeded (shop, publishers, dashboard): the URLs are printed.
run: $(STAMP)
	$(BIN)/retarget serve --demo

lint: $(STAMP)
	$(BIN)/ruff check src tests loadtests
	$(BIN)/ruff format --check src tests loadtests

format: $(STAMP)
	$(BIN)/ruff check --fix src tests loadtests
	$(BIN)/ruff format src tests loadtests

test: lint
	$(BIN)/python -m pytest

# Side-by-side throughput and latency against raw-ASGI floors (needs wrk: apt-get install wrk).
bench: $(STAMP)
	$(BIN)/python loadtests/bench.py --markdown docs/benchmarks.md

clean:
	rm -rf $(VENV) var .pytest_cache
