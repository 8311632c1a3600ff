# Two commands do all the set-up on a fresh machine:
#   make run    build the environment, then run the whole pipeline (every stage) on the built-in data
#   make test   build the environment, then run the test suite (the command CI runs)
# and one command per paper table (workflow/tables.yaml), e.g. `make table1`, `make tables` (Tables 1, 3 and 4
# and the seed table together, each row trained once) and `make convergence` (does a 1.5x longer run add
# mAP?): see the README. `make compare` is `dvc exp show --only-changed` narrowed to each model's mAP, F1-C and
# F1-O (README, "Comparing runs"). JOBS rows train at once (2 on 2 CPU cores is 1.45x faster than 1; on a GPU use JOBS=1).
VENV ?= .venv
CORES ?= all
JOBS ?= 2
export PATH := $(abspath $(VENV))/bin:$(PATH)

TABLES := table1 table2 table3 table4 table5 seeds temperatures
.PHONY: run test setup compare $(TABLES) tables convergence

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

# DVC gives each changed stage dependency (a model folder's hash) a 39-character column and has no setting to
# hide them: this drops them, the top-3 and tuned F1 and the date, so a one-param experiment fits on a screen.
COMPARE_DROP ?= .*(top3|tuned|/).*|Created
compare:
	dvc exp show --only-changed --drop '$(COMPARE_DROP)'

$(TABLES): setup
	wsdkd table $@ --cores $(CORES) --jobs $(JOBS)

tables: setup
	wsdkd table table1 table3 table4 seeds --cores $(CORES) --jobs $(JOBS)

convergence: setup
	wsdkd convergence --cores $(CORES) --jobs $(JOBS)
