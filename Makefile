# The two commands of the README:  `make demo`  and  `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
UV_VERSION := 0.13.8
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
VENV := .venv
CRMWH := $(VENV)/bin/crmwh
LANDING ?= sources/landing
SCALE ?= small

.PHONY: setup setup-superset setup-browser setup-reports setup-spark demo-data run serve demo test check lint lint-checks clean

## setup: install the pipeline (uv, from uv.lock), Superset (its own venv, pinned), the
## browser test's tools (Debian's chromium, playwright-core from tests/browser/package-lock.json)
## and the scheduled reports' services (Debian's postgresql, redis-server, chromedriver)
setup: $(VENV)/.synced setup-superset setup-browser setup-reports

$(UV):
	$(PYTHON) -m pip install --quiet --user "uv==$(UV_VERSION)" || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --inexact --python $(PYTHON)
	touch $@

setup-superset:
	bash scripts/setup_superset.sh

setup-browser:
	bash scripts/setup_browser.sh

## setup-reports: Debian's postgresql, redis-server, chromium, chromedriver (crmwh serve --reports)
setup-reports:
	bash scripts/setup_reports.sh

## setup-spark: the optional Spark engine (extra `spark`: pyspark, dbt-spark) and Java 17
setup-spark: $(VENV)/.synced-spark
	bash scripts/setup_spark.sh

$(VENV)/.synced-spark: $(VENV)/.synced pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON) --extra spark
	touch $@

## demo: set everything up, generate sample exports, run the pipeline, serve dashboards
demo: setup
	$(CRMWH) demo-data --out $(LANDING) --scale $(SCALE)
	$(CRMWH) run --landing $(LANDING)
	$(CRMWH) serve

## test: the style checkers over everything (`lint`), then the whole suite (real DuckDB,
## real Dagster runs, real Superset server, Spark); --durations lists the slowest tests at
## the end of every log
test: setup setup-spark
	$(MAKE) --no-print-directory lint
	$(VENV)/bin/pytest -q --durations=40

## check: the fast tier before every commit (a few minutes): the style checkers (sqlfluff
## only over the models changed since the last commit), parsers, mappings, settings,
## configuration folder, checks, dbt on an empty raw layer with its unit tests, dashboard
## specs — every test that needs no demo run, server, browser or Spark
check: $(VENV)/.synced
	$(MAKE) --no-print-directory lint-checks SQLFLUFF_PATHS="$(CHANGED_MODELS)"
	$(VENV)/bin/pytest -q -m "not slow"

## lint: the style checkers over everything, failing on any finding (CI runs it): ruff
## (rules and format) over the Python; sqlfluff over every dbt model (rules in
## dbt_project/.sqlfluff; about 5 minutes: the dbt templater compiles each model);
## dbt-score over the dbt project's metadata (descriptions, tests, owners: at least 9.0 of 10)
lint: $(VENV)/.synced
	$(MAKE) --no-print-directory lint-checks SQLFLUFF_PATHS=models

# model files (relative to dbt_project/) changed or added since the last commit
CHANGED_MODELS = $(patsubst dbt_project/%,%,$(filter %.sql,$(shell \
	git diff --name-only --diff-filter=d HEAD -- dbt_project/models 2>/dev/null; \
	git ls-files --others --exclude-standard -- dbt_project/models 2>/dev/null)))

lint-checks:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(if $(strip $(SQLFLUFF_PATHS)),cd dbt_project && ../$(VENV)/bin/sqlfluff lint $(SQLFLUFF_PATHS) \
		--processes 2 --nocolor,@echo "sqlfluff: no model changed since the last commit")
	cd dbt_project && DBT_SEND_ANONYMOUS_USAGE_STATS=false ../$(VENV)/bin/dbt parse --quiet \
		--profiles-dir . --target lint --target-path target/lint
	$(VENV)/bin/dbt-score lint --manifest dbt_project/target/lint/manifest.json --fail-project-under 9.0

clean:
	rm -rf data warehouse.duckdb warehouse.duckdb.* dbt_project/target dbt_project/logs
