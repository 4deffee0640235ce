# biodata-cache: `make run` builds the sample cache, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

SAMPLE_ROOT ?= .biodata-sample
CACHE_ROOT ?= .biodata-cache
ASSETS ?= 300
SEED ?= 0

export DAGSTER_HOME := $(CURDIR)/.dagster_home
export BIODATA_SAMPLE_ROOT := $(abspath $(SAMPLE_ROOT))
export BIODATA_CACHE_ROOT := $(abspath $(CACHE_ROOT))

.PHONY: venv home run sample check-defs test dev clean bench

venv: $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[pipeline,postgres,test]'
	touch $@

# The Dagster instance folder, with the project's dagster.yaml linked in: `make home` before
# running Dagster commands by hand with DAGSTER_HOME=$PWD/.dagster_home.
home: $(DAGSTER_HOME)/dagster.yaml

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	ln -sf $(CURDIR)/dagster.yaml $@

# The sample corpus is generated once; `make sample` makes it again (e.g. with ASSETS=1000).
$(SAMPLE_ROOT)/.complete: | $(INSTALLED)
	$(MAKE) sample

sample: venv
	rm -rf $(SAMPLE_ROOT)
	$(BIN)/biodata-cache-sample --assets $(ASSETS) --seed $(SEED) --out $(SAMPLE_ROOT)
	touch $(SAMPLE_ROOT)/.complete

# FORCE_PUBLISH=1 publishes what the publish guard refuses (e.g. after making the sample smaller).
run: venv $(DAGSTER_HOME)/dagster.yaml $(SAMPLE_ROOT)/.complete
	$(BIN)/biodata-cache-pipeline materialize $(if $(FORCE_PUBLISH),--force-publish)

# dg (dagster-dg-cli) lives in its own environment, at the project's Dagster version: its pydantic
# pin clashes with the pipeline's (dg-workspace/dg.toml). dg loads the code location with .venv's
# Python; DAGSTER_HOME is unset so that dg's own process does not load the project's dagster.yaml.
DG_VENV := .venv-dg
DG_INSTALLED := $(DG_VENV)/.installed

$(DG_INSTALLED): $(INSTALLED)
	test -x $(DG_VENV)/bin/python || $(PYTHON) -m venv $(DG_VENV)
	$(DG_VENV)/bin/python -m pip install --quiet \
		"dagster-dg-cli==$$($(BIN)/python -c 'import dagster; print(dagster.__version__)')"
	touch $@

check-defs: venv $(DG_INSTALLED)
	cd dg-workspace && env -u DAGSTER_HOME $(CURDIR)/$(DG_VENV)/bin/dg check defs

# tests/test_daemon.py also runs the Dagster daemon on Postgres: install a server if there is none.
# Test files run side by side in TEST_WORKERS processes (pytest-xdist): most tests wait on the
# Dagster processes, servers and subprocesses they start, so 3 workers keep 2 cores busy.
# tests/test_dg_check_defs.py runs `dg check defs` (make check-defs) in .venv-dg.
TEST_WORKERS ?= 3
test: venv $(DG_INSTALLED)
	.ci/install-postgres-server
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# Benchmarks (benchmarks/README.md): corpora and runs under BENCH_DIR; QUICK=1 measures 10,000 assets only.
BENCH_DIR ?= /tmp/bdc-bench
bench: venv
	$(BIN)/python benchmarks/run.py --scratch $(BENCH_DIR) $(if $(QUICK),--quick)
	$(if $(QUICK),,$(BIN)/python benchmarks/run.py full qc --assets 100000 --runs 1 --stock-event-log --scratch $(BENCH_DIR))

# Started from DAGSTER_HOME, where dagster.yaml is linked: from the project folder, `dagster dev`
# would warn that the project's dagster.yaml "will not be used", which is not so.
DEV_PORT ?= 3000
dev: venv $(DAGSTER_HOME)/dagster.yaml $(SAMPLE_ROOT)/.complete
	cd $(DAGSTER_HOME) && $(CURDIR)/$(BIN)/dagster dev -w $(CURDIR)/workspace.yaml -h 127.0.0.1 -p $(DEV_PORT)

clean:
	rm -rf $(SAMPLE_ROOT) $(CACHE_ROOT) $(DAGSTER_HOME)
