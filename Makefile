# Two commands do all the set-up on a fresh machine:
#   make run    build the environment, then run the whole pipeline (every stage) on the built-in data
#   make test   build the environment, then run the test suite (the command CI runs)
# and one command per paper table (workflow/tables.yaml), e.g. `make table1`, and `make convergence` (does a
# 1.5x longer run add mAP?): see the README.
VENV ?= .venv
CORES ?= all
export PATH := $(abspath $(VENV))/bin:$(PATH)

TABLES := table1 table2 table3 table4 table5 seeds
.PHONY: run test setup $(TABLES) convergence

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

$(TABLES): setup
	wsdkd table $@ --cores $(CORES)

convergence: setup
	wsdkd convergence --cores $(CORES)
