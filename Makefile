# Stethoscope developer commands. On a fresh Debian/Ubuntu machine (as root,
# or with sudo):
#
#   make run    install what is missing, migrate var/stethoscope.sqlite,
#               create the first admin (its password is printed once) and
#               serve development.ini on http://localhost:6543
#   make test   ruff format --check, ruff check, pytest with coverage
#
# The virtualenv is .venv; it is reinstalled only when setup.py changes.
# Set PYTHON to use another interpreter (3.11 or newer), PYTEST_ARGS to pass
# arguments to pytest (make test PYTEST_ARGS="-x tests/unit").

PYTHON ?= python3
PYTEST_ARGS ?=
# Test processes (pytest-xdist): one per core. Each starts its own
# redis-server, PostgreSQL cluster and Chromium, so they never share state.
PYTEST_WORKERS ?= auto
# make run SIMULATE=0 serves without the simulated demo house.
SIMULATE ?= 1

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
# A recipe that fails leaves no stamp or half-made venv marker behind.
.DELETE_ON_ERROR:

VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check --no-input
# Touched after a successful install; setup.py newer than a stamp reinstalls.
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-testing

.PHONY: help run test lint format clean system-deps-run system-deps-test

help:
	@echo "make run      serve the embedded default on http://localhost:6543"
	@echo "make test     ruff format --check, ruff check, pytest with coverage"
	@echo "make lint     ruff format --check and ruff check only"
	@echo "make format   ruff format and ruff check --fix"
	@echo "make clean    remove .venv and caches (var/, the dev database, stays)"

system-deps-run:
	@PYTHON=$(PYTHON) bash tools/system-deps.sh run

system-deps-test:
	@PYTHON=$(PYTHON) bash tools/system-deps.sh test

# Pyramid 2.1 imports pkg_resources, which setuptools 81 removed: pin it
# before anything else is installed.
$(VENV)/pyvenv.cfg: | system-deps-run
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip 'setuptools<81'

$(RUN_STAMP): setup.py $(VENV)/pyvenv.cfg
	@if [ -f $(TEST_STAMP) ] && [ $(TEST_STAMP) -nt setup.py ]; then \
		echo "$(VENV) is up to date (installed with the testing extras)"; \
	else \
		$(PIP) install --progress-bar off -e .; \
	fi
	touch $@

$(TEST_STAMP): setup.py $(VENV)/pyvenv.cfg
	$(PIP) install --progress-bar off -e '.[testing]'
	touch $@

# stethoscope-user bootstrap creates the first admin when there is no user
# and prints its password, once; later runs print how to reset a password.
# Unless SIMULATE=0, the demo house (docs/simulator.md) is set up and its
# badges post to the server from the background; the trap stops them when
# pserve stops, however it stops (Ctrl-C reaches both).
run: $(RUN_STAMP)
	$(BIN)/initialize_stethoscope_db development.ini
	$(BIN)/stethoscope-user development.ini bootstrap
	@if [ "$(SIMULATE)" = 0 ]; then exec $(BIN)/pserve development.ini; fi; \
	echo "+ stethoscope-simulate setup development.ini"; \
	$(BIN)/stethoscope-simulate setup development.ini \
		|| echo "make run: the demo house could not be set up; serving anyway" >&2; \
	echo "+ stethoscope-simulate live http://localhost:6543 &  (make run SIMULATE=0: without it)"; \
	$(BIN)/stethoscope-simulate live http://localhost:6543 & simulator=$$!; \
	trap 'kill $$simulator 2>/dev/null; wait $$simulator 2>/dev/null || true' EXIT; \
	echo "+ pserve development.ini"; \
	$(BIN)/pserve development.ini

# All three run even when one fails, so one run shows every problem; the
# exit status is pytest's when it failed (5: no tests ran), else 1 for lint.
test: system-deps-test $(TEST_STAMP)
	@lint=0; tests=0; \
	echo "+ ruff format --check ."; $(BIN)/ruff format --check . || lint=1; \
	echo "+ ruff check ."; $(BIN)/ruff check . || lint=1; \
	echo "+ pytest -n $(PYTEST_WORKERS) --cov=stethoscope --cov-report=term-missing:skip-covered $(PYTEST_ARGS)"; \
	$(BIN)/pytest -n $(PYTEST_WORKERS) --cov=stethoscope \
		--cov-report=term-missing:skip-covered $(PYTEST_ARGS) || tests=$$?; \
	if [ $$lint -ne 0 ]; then echo "make test: ruff found problems (make format fixes most)" >&2; fi; \
	if [ $$tests -ne 0 ]; then echo "make test: pytest exited with $$tests" >&2; exit $$tests; fi; \
	exit $$lint

lint: $(TEST_STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis \
		.coverage .coverage.* htmlcov
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
