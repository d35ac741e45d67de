# BrokerFlow developer entry points. `make help` lists them.
#
# Everything runs through uv in the project's .venv (uv sync --frozen: exactly uv.lock).
# Extra arguments: make test PYTEST_ARGS='-k signup'   make run STACK_ARGS=--partial

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

UV_VERSION := 0.13.8
# A uv on PATH, else the one `pip install uv` put into python3's site-packages.
UV = $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN = $(UV) run --frozen

PYTEST_ARGS ?=
STACK_ARGS ?=
SMOKE_ARGS ?=
ARTIFACTS := test-artifacts
CHROMIUM_STAMP := .venv/.chromium-install-attempted
# Python packages and top-level modules mypy checks (the ones that exist so far).
MYPY_TARGETS = $(wildcard settings.py worker.py schedules.py) \
	$(filter-out tests,$(patsubst %/__init__.py,%,$(wildcard */__init__.py)))

.PHONY: help install uv chromium run stop test lint bench smoke clean distclean

help:
	@echo "make install    uv sync --frozen (+ Debian chromium for browser tests, if root)"
	@echo "make run        the whole stack: PostgreSQL, migrations, Temporal, MT5 simulator,"
	@echo "                worker, API, seed data (Ctrl-C stops it all; STACK_ARGS=--partial)"
	@echo "make stop       stop a running stack and a leftover embedded PostgreSQL"
	@echo "make smoke      sign up, log in, wait for the demo account, against a running stack"
	@echo "make test       pytest (junit: $(ARTIFACTS)/junit.xml; PYTEST_ARGS=...)"
	@echo "make lint       ruff check + mypy"
	@echo "make bench      every bench/*.py as python -m bench.NAME"
	@echo "make clean      caches and test artifacts (keeps .venv and .data)"
	@echo "make distclean  clean + stop + remove .venv and .data (the local database too)"

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || { \
		echo "uv not found; installing uv==$(UV_VERSION) with pip"; \
		python3 -m pip install --quiet "uv==$(UV_VERSION)"; }

install: uv
	$(UV) sync --frozen
	@$(MAKE) chromium

# Browser tests drive Debian's chromium (no browser download works here); PDF tests render pages
# with poppler's pdftoppm. Tried once per .venv.
chromium:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/pdftoppm ]; then exit 0; fi; \
	if [ -f $(CHROMIUM_STAMP) ]; then \
		echo "note: /usr/bin/chromium is missing (install already tried, see $(CHROMIUM_STAMP));" \
			"browser tests cannot run"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "warning: /usr/bin/chromium or pdftoppm is missing and we are not root;" \
			"run 'sudo apt-get install -y chromium poppler-utils' for the browser and PDF tests"; \
		exit 0; fi; \
	echo "installing Debian's chromium and poppler-utils for the browser and PDF tests" \
		"(once; log in $(CHROMIUM_STAMP))"; \
	if { apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils; } \
			>$(CHROMIUM_STAMP) 2>&1; then \
		echo "chromium installed: $$(/usr/bin/chromium --version 2>/dev/null || echo '?')"; \
	else \
		echo "warning: apt-get install chromium failed (see $(CHROMIUM_STAMP));" \
			"browser tests cannot run"; fi

run: install
	$(RUN) python -m ops.stack $(STACK_ARGS)

stop:
	$(RUN) python -m ops.stack --stop

smoke:
	$(RUN) python -m ops.smoke $(SMOKE_ARGS)

# pytest exit 5 = no tests collected: reported, not failed. `python -m pytest` puts the repo root
# on sys.path, so tests import `settings`, `domain`, ... as the app does.
# Bytecode is written (PYTHONDONTWRITEBYTECODE emptied, for this run and the processes it starts):
# with it set, as on our machines, every worker, API and simulator the suite starts compiled its
# imports (SQLAlchemy, Temporal, FastAPI, WeasyPrint, ...) from source again, ~2 s of CPU each.
test: install
	@mkdir -p $(ARTIFACTS)
	@set +e; \
	PYTHONDONTWRITEBYTECODE= \
		$(RUN) python -m pytest -p no:cacheprovider -q --junitxml=$(ARTIFACTS)/junit.xml $(PYTEST_ARGS); \
	code=$$?; \
	if [ $$code -eq 5 ]; then \
		echo "WARNING: pytest collected no tests (exit 5); not counted as a failure"; exit 0; fi; \
	exit $$code

lint: install
	$(RUN) ruff check .
	$(RUN) mypy $(MYPY_TARGETS)

bench: install
	@mods=""; \
	for f in bench/*.py; do \
		[ -e "$$f" ] || continue; n=$$(basename "$$f" .py); \
		case "$$n" in _*) continue;; esac; mods="$$mods $$n"; \
	done; \
	if [ -z "$$mods" ]; then echo "no benchmarks in bench/"; exit 0; fi; \
	for m in $$mods; do echo "== python -m bench.$$m"; $(RUN) python -m "bench.$$m"; done

clean:
	rm -rf $(ARTIFACTS) .pytest_cache .ruff_cache .mypy_cache
	find . -path ./.venv -prune -o -path ./.data -prune -o -name __pycache__ -type d -print0 \
		| xargs -0 rm -rf

distclean: clean
	-@[ -x .venv/bin/python ] && $(RUN) python -m ops.stack --stop || true
	rm -rf .venv .data
