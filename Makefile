# The two commands of the README:
#   make plan   set up .venv and print the offline plan of the dev stack (STACK=prod for another)
#   make test   set up .venv with the test tools and run every test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= dev

.PHONY: plan test bench clean

plan: $(VENV)/.requirements
	$(PY) -m tools.plan $(STACK)

test: $(VENV)/.requirements-test
	$(PY) -m pytest

bench: $(VENV)/.requirements
	$(PY) -m tools.bench_plan

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.requirements: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.requirements-test: requirements.txt requirements-test.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@ $(VENV)/.requirements

clean:
	rm -rf $(VENV) build .pytest_cache
