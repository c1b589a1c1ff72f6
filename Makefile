# Stethoscope developer commands. On a fresh Debian/Ubuntu machine (as root,
# or with sudo):
#
#   make run    install what is missing, migrate var/stethoscope.sqlite,
#               create the first admin (its password is shown once, in the
#               summary before the server starts) and serve development.ini
#               on http://localhost:6543 (make run PORT=8080: another port)
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
# make run PORT=8080 serves (and the simulator posts) there instead.
PORT ?= 6543

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
	@echo "make run      serve the embedded default on http://localhost:6543 (PORT=8080: elsewhere)"
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

# The port is checked first: a busy one is one line (tools/port_free.py),
# before anything is set up or posted. Another port than development.ini's
# is served from var/development-PORT.ini, which takes everything else from
# development.ini (PasteDeploy's config: use) and changes only listen.
#
# stethoscope-user bootstrap creates the first admin when there is no user
# and prints its password, once; it is kept in a shell variable only and
# shown again in the summary just before the server starts, where it is not
# lost in the output above. Later runs show how to reset a password instead.
#
# Unless SIMULATE=0, the demo house (docs/simulator.md) is set up once (when
# there is no site demo: what an admin changed in it is never put back) and
# its badges post to the server from the background; the trap stops them
# when pserve stops, however it stops (Ctrl-C reaches both).
#
# pserve imports Pyramid, and Pyramid 2.1 pkg_resources, before our package
# can silence that deprecation warning: nothing an operator can act on.
PSERVE = PYTHONWARNINGS='ignore:pkg_resources is deprecated:UserWarning' $(BIN)/pserve

run: $(RUN_STAMP)
	@$(BIN)/python tools/port_free.py localhost '$(PORT)'
	$(BIN)/initialize_stethoscope_db development.ini
	@url=http://localhost:$(PORT); ini=development.ini; \
	if [ '$(PORT)' != 6543 ]; then \
		ini=var/development-$(PORT).ini; \
		{ printf '# make run PORT=$(PORT): development.ini on another port.\n'; \
		  printf '[app:main]\nuse = config:%s/development.ini\n\n' '$(CURDIR)'; \
		  printf '[server:main]\nuse = config:%s/development.ini\n' '$(CURDIR)'; \
		  printf 'listen = localhost:$(PORT)\n\n'; \
		  sed -n '/^\[loggers\]/,$$p' development.ini; } > $$ini; \
	fi; \
	echo "+ stethoscope-user development.ini bootstrap"; \
	bootstrap=$$($(BIN)/stethoscope-user development.ini bootstrap --url $$url); \
	password=$$(printf '%s\n' "$$bootstrap" | awk '$$1 == "password" { print $$2 }'); \
	if [ -z "$$password" ]; then printf '%s\n' "$$bootstrap"; fi; \
	summary() { \
		echo; \
		echo "Stethoscope: $$url (pserve $$ini)"; \
		if [ -n "$$password" ]; then \
			echo "  log in at $$url/login as admin, password $$password"; \
			echo "  (shown this once: choose your own with"; \
			echo "  $(BIN)/stethoscope-user development.ini passwd admin)"; \
		else \
			echo "  log in at $$url/login"; \
		fi; \
		echo "  Ctrl-C stops it$$1"; \
		echo; \
	}; \
	if [ "$(SIMULATE)" = 0 ]; then summary ""; exec $(PSERVE) $$ini; fi; \
	sites=$$($(BIN)/stethoscope-house development.ini site list) || sites=; \
	if printf '%s\n' "$$sites" | grep -q '^demo '; then \
		echo "+ the demo house (site demo) is set up already; left as it is"; \
	else \
		echo "+ stethoscope-simulate setup development.ini"; \
		$(BIN)/stethoscope-simulate setup development.ini \
			|| echo "make run: the demo house could not be set up; serving anyway" >&2; \
	fi; \
	echo "+ stethoscope-simulate live $$url &  (make run SIMULATE=0: without it)"; \
	$(BIN)/stethoscope-simulate live $$url & simulator=$$!; \
	trap 'kill $$simulator 2>/dev/null; wait $$simulator 2>/dev/null || true' EXIT; \
	summary " (and the demo house's simulator)"; \
	$(PSERVE) $$ini

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
