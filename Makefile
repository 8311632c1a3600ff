# Two commands do all the set-up on a fresh machine:
#   make run    build the environment, then run the whole pipeline (every stage) on the built-in data
#   make test   build the environment, then run the test suite (the command CI runs)
VENV ?= .venv
CORES ?= all
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: run test setup

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed

run: setup
	snakemake --cores $(CORES)

test: setup
	pytest
