# Set-up and entry points. `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY_FOR_VENV ?= $(shell command -v python3.12 || command -v python3)
DATA := resources/Data_Sum_HPP_Multi_Site_Share.csv
SHARED_DATA := ../shared/data/Data_Sum_HPP_Multi_Site_Share.csv
CORES ?= all

RADON ?= ../shared/data/radon/radon.csv

.PHONY: setup lock run radon report test test-quick check benchmark clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.lock
	@$(PY_FOR_VENV) -c 'import sys; sys.exit(sys.version_info < (3, 12))' || \
	  { echo "Python >= 3.12 is needed; set PY_FOR_VENV=/path/to/python3.12" >&2; exit 1; }
	@command -v dot >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; \
	  else echo "Graphviz's 'dot' is needed for the model graphs: install the 'graphviz' package" >&2; exit 1; fi; }
	$(PY_FOR_VENV) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet --require-hashes --no-deps -r requirements.lock
	touch $@

# Re-resolve every package from the pins in requirements.txt: writes requirements.lock (exact
# versions and hashes, all platforms) and envs/hbm.yaml (the rules' conda env, same versions).
lock: setup
	$(VENV)/bin/pip install --quiet uv==0.13.9
	$(VENV)/bin/uv pip compile requirements.txt --universal --python-version 3.12 --generate-hashes --quiet -o requirements.lock
	$(VENV)/bin/python envs/write_conda_env.py

# Use the shared copy of the data where there is one; otherwise the workflow downloads it.
$(DATA):
	@if [ -f $(SHARED_DATA) ]; then mkdir -p resources && cp $(SHARED_DATA) $@; fi

run: setup $(DATA)
	$(VENV)/bin/snakemake --cores $(CORES)
	$(VENV)/bin/snakemake --report results/report.html

# The worked second example: Minnesota radon (85 counties) from the file RADON points at.
radon: setup
	@test -f "$(RADON)" || { echo "radon data not found at $(RADON); set RADON=/path/to/radon.csv" >&2; exit 1; }
	$(VENV)/bin/snakemake --configfile config/radon.yaml --replace-workflow-config --config 'data={"path": "$(abspath $(RADON))"}' --directory runs/radon --cores $(CORES)
	$(VENV)/bin/snakemake --configfile config/radon.yaml --replace-workflow-config --config 'data={"path": "$(abspath $(RADON))"}' --directory runs/radon --report results/report.html

report: setup
	$(VENV)/bin/snakemake --report results/report.html

test: setup
	$(VENV)/bin/pytest

# Everything but the minutes-long cases marked slow (many groups, whole workflows at scale).
test-quick: setup
	$(VENV)/bin/pytest -m "not slow"

# Format and lint checks, run by CI before the tests.
check: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/snakefmt --check Snakefile workflow/rules
	$(VENV)/bin/snakemake --lint --cores 1

# Measures the workflow and writes its tables into docs/performance.md.
benchmark: setup $(DATA)
	$(VENV)/bin/python bench/lecture.py
	$(VENV)/bin/python bench/many_groups.py --radon $(RADON)

clean:
	rm -rf results logs benchmarks .snakemake
