# AI-OS backend. The two commands for a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REQUIREMENTS := requirements-dev.txt constraints.txt sandbox_manager/requirements.txt python-backend/requirements.txt
PYTEST_ARGS ?=
# pytest-xdist processes for `make test` (tests/conftest.py says how the suite is shared).
# Most of the suite waits on containers and processes, so 3 pay on 2 cores; 0: one process
TEST_PROCESSES ?= 3

.PHONY: install run test lint unit bench images compose-smoke clean

install: $(STAMP)  ## one virtual environment with every service's and the tests' pinned requirements

$(STAMP): $(REQUIREMENTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

run: install  ## start the whole stack natively (redis, sandbox manager, worker, web, flower); Ctrl-C stops it
	scripts/with-services.sh scripts/run.sh

test: install  ## the linter, the whole suite on real services (dockerd, the sandbox image), the compose smoke (Compose v1), the guide's Quick Start on a fresh clone (Compose v2)
	$(PY) -m ruff check .
	scripts/with-services.sh bash -c 'scripts/build-images.sh && scripts/ensure-aimock.sh && $(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile $(PYTEST_ARGS) && SMOKE_FRESH_CLONE=0 scripts/compose-smoke.sh && v2=$$(scripts/install-compose-v2.sh) && COMPOSE=$$v2 scripts/compose-fresh-clone-smoke.sh'

lint: install  ## ruff over the whole project (settings in ruff.toml)
	$(PY) -m ruff check .

unit: install  ## the unit tests alone: no services needed
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

bench: install  ## benchmarks, each against a baseline measured in the same run
	scripts/with-services.sh bash -c 'scripts/build-images.sh && $(PY) bench/sandbox_latency.py && $(PY) bench/interpreter.py && $(PY) bench/pipeline.py && $(PY) bench/metrics_overhead.py && $(PY) bench/chat_stream.py && $(PY) bench/agent.py && $(PY) bench/analysis.py && $(PY) bench/browser.py'

images: install  ## build the sandbox and browser images (and their local Debian base once)
	scripts/with-services.sh scripts/build-images.sh

compose-smoke: install  ## build the compose stack on local bases, run a task through it, take it down
	scripts/with-services.sh scripts/compose-smoke.sh

clean:
	rm -rf $(VENV) .pytest_cache
