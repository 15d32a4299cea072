# Everyday commands. Run them in the project's virtualenv (`python3 -m venv .venv && . .venv/bin/activate`),
# or give another interpreter: `make test PYTHON=/path/to/python`.
# `make help` lists the targets.

PYTHON ?= python
# what `make install` installs: the embedded emulator, the test tools and the developer tools (pre-commit);
# add `bench` for bench.forecast, bench.oracle and bench.routing_optimum (statsforecast, HiGHS), `ui` for bench.ui_check
EXTRAS ?= local,test,dev
# the benchmarks `make bench` runs, each one's default run one after another: about 12 minutes in all on 2 cores
# (ingest 0.5, plan 1.5, rollup 1, routing 1, drain 2, chaos 3; longer when the cores are shared)
BENCHES ?= ingest plan rollup routing drain chaos
# where `make bench` keeps each benchmark's output
BENCH_OUT ?= .localaws/bench

.PHONY: help install lint typecheck test-fast test bench bench-all

help:
	@echo "make install     pip install -e \".[$(EXTRAS)]\" and the git pre-commit hook"
	@echo "make lint        ruff (lint and format check) and sqlfluff on sql/ (seconds)"
	@echo "make typecheck   mypy (about a minute the first time, seconds from its cache)"
	@echo "make test-fast   the unit tests: no emulator, no network, ruff and mypy included; property tests at a"
	@echo "                 quarter of their examples (STOREOPS_TEST_PROFILE=fast), a process a core; 30 s on 2 idle cores"
	@echo "make test        the whole suite, as CI runs it (two processes, each with its own emulator and Prefect harness; about 8 minutes)"
	@echo "make bench       the default benchmarks: $(BENCHES) (about 12 minutes in all);"
	@echo "                 one of them: make bench BENCHES=drain; every one's time: python -m bench.<name> --help"
	@echo "make bench-all   also scale, service_level, forecast, oracle and routing_optimum (about 47 minutes; needs EXTRAS=...,bench)"

install:
	$(PYTHON) -m pip install -e ".[$(EXTRAS)]"
	$(PYTHON) -m pre_commit install

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m sqlfluff lint $(wildcard sql/*.sql)

typecheck:
	$(PYTHON) -m mypy

test-fast:
	STOREOPS_TEST_PROFILE=fast $(PYTHON) -m pytest tests/unit -n auto

test:
	$(PYTHON) -m pytest

# Each benchmark's default run, one at a time (they share the machine's cores), with its wall time; the
# outputs stay in $(BENCH_OUT)/<name>.txt (the table, then the JSON line) and <name>.log (stderr).
bench:
	@mkdir -p $(BENCH_OUT)
	@for name in $(BENCHES); do \
		echo "== bench.$$name"; \
		start=$$(date +%s); \
		$(PYTHON) -m bench.$$name --json > $(BENCH_OUT)/$$name.txt 2> $(BENCH_OUT)/$$name.log; status=$$?; \
		tail -n 1 $(BENCH_OUT)/$$name.txt; \
		echo "   bench.$$name: exit $$status in $$(( $$(date +%s) - start )) s" \
			"(output in $(BENCH_OUT)/$$name.txt, progress and errors in $$name.log)"; \
		[ $$status -eq 0 ] || failed="$$failed $$name"; \
	done; \
	if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi

bench-all:
	$(MAKE) bench BENCHES="$(BENCHES) scale service_level forecast oracle routing_optimum"
