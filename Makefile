# The front door. Every target is a thin call of a playbook or a script; `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV := .venv/bin

.PHONY: help setup test lint bench run-invoice-app run-payment-provider

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-22s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## install Debian packages the tests use and the pinned .venv
	scripts/setup.sh

test: ## run every test tier, fastest first (what CI runs)
	scripts/test.sh

lint: ## ruff on the services and tests
	scripts/test.sh lint

run-invoice-app: setup ## run invoice-app on 127.0.0.1:8081 (SQLite, provider on :8082)
	cd services && ../$(VENV)/python -m invoice_app

run-payment-provider: setup ## run payment-provider on 127.0.0.1:8082 (SQLite ledger)
	cd services && ../$(VENV)/python -m payment_provider

bench: setup ## benchmarks against their floors on this machine; writes out/bench.json
	$(VENV)/python -m tests.bench
