# crm_lifecycle: every target bootstraps what it needs (scripts/bootstrap.py).
# SERIES=18.0 (default) or 19.0: the Odoo series, each with its own cache.
# ODOO_SRC (or ODOO_SRC_18 / ODOO_SRC_19)=<Odoo source tree or git directory>
# is taken from the environment.
PYTHON3 ?= python3
SERIES ?= 18.0
export SERIES

.PHONY: run test lint bootstrap bench

run: ## Odoo with crm_lifecycle and demo data on http://127.0.0.1:8069
	$(PYTHON3) scripts/odoo_run.py

test: ## fresh database, Odoo's test runner, then pytest on tests/
	$(PYTHON3) scripts/odoo_test.py

lint: ## pre-commit: ruff, pylint-odoo, OCA checks, prettier (XML)
	$(PYTHON3) scripts/lint.py

bench: ## benchmarks of bench/ (they print ratios) on the database crm_lifecycle_bench
	$(PYTHON3) scripts/odoo_bench.py

bootstrap: ## only prepare the cache (Odoo source, virtualenv, PostgreSQL)
	$(PYTHON3) scripts/bootstrap.py
