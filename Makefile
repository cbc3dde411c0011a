# Two commands on a fresh machine (see README.md):
#   make quick   create .venv, install, run the whole workflow with config/quick.yaml (offline, minutes)
#   make test    install, bring the quick run up to date, run the test suite
PYTHON ?= python3
VENV   ?= .venv
CORES  ?= all
BIN     = $(VENV)/bin
SNAKE   = $(BIN)/snakemake --profile profiles/default --cores $(CORES)
# Pinned versions of every package (torch==2.13.0 CPU build by default; see README for CUDA).
PIP     = $(BIN)/pip install --quiet --disable-pip-version-check -c requirements/constraints.txt

.PHONY: install quick paper test report lint format bench clean-quick plan calibrate

$(BIN)/.installed: pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(PIP) torch==2.13.0
	$(PIP) -e ".[workflow,dev]"
	# medmnist without its dependencies: torchvision is only needed by its own downloader.
	$(PIP) --no-deps medmnist
	touch $@

install: $(BIN)/.installed

quick: install
	$(BIN)/python -m otgap.config config/config.yaml config/quick.yaml
	$(SNAKE) --configfile config/quick.yaml

paper: install
	$(BIN)/python -m otgap.config config/config.yaml
	$(SNAKE)

test: quick
	OTGAP_REQUIRE_QUICK=1 $(BIN)/pytest

# Snakemake's HTML report of the quick run (figures with captions, runtimes, provenance of rules).
report: quick
	$(SNAKE) --configfile config/quick.yaml --report results/quick/report.zip

lint: install
	$(BIN)/ruff check src scripts tests benchmarks
	$(BIN)/snakefmt --check workflow
	# advisory: it asks for a conda env per rule (this project pins one venv instead) and for
	# helper functions to live outside the stage files
	-$(BIN)/snakemake --lint --configfile config/quick.yaml

format: install
	$(BIN)/ruff format src scripts tests benchmarks
	$(BIN)/snakefmt workflow

bench: install
	$(PIP) --no-deps pyhessian==0.1
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Cost of a run before launching it (CONFIG=config/quick.yaml for the quick run; empty: paper).
CONFIG ?=
plan: install
	$(BIN)/python -m otgap.plan plan $(if $(CONFIG),--configfile $(CONFIG))

calibrate: install
	$(BIN)/python -m otgap.plan calibrate $(if $(CONFIG),--configfile $(CONFIG))

clean-quick:
	rm -rf results/quick logs/quick
