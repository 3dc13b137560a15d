# Set-up and entry points. `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY_FOR_VENV ?= $(shell command -v python3.12 || command -v python3)
DATA := resources/Data_Sum_HPP_Multi_Site_Share.csv
SHARED_DATA := ../shared/data/Data_Sum_HPP_Multi_Site_Share.csv
CORES ?= all

RADON ?= ../shared/data/radon/radon.csv

.PHONY: setup run radon report test test-quick benchmark clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@$(PY_FOR_VENV) -c 'import sys; sys.exit(sys.version_info < (3, 12))' || \
	  { echo "Python >= 3.12 is needed; set PY_FOR_VENV=/path/to/python3.12" >&2; exit 1; }
	@command -v dot >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; \
	  else echo "Graphviz's 'dot' is needed for the model graphs: install the 'graphviz' package" >&2; exit 1; fi; }
	$(PY_FOR_VENV) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

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

# The measurements in README.md's Performance section (bambi is needed only here).
benchmark: setup $(DATA)
	$(VENV)/bin/pip install --quiet bambi==0.21.0
	$(VENV)/bin/python bench/lecture.py
	$(VENV)/bin/python bench/many_groups.py --radon $(RADON)

clean:
	rm -rf results logs benchmarks .snakemake
