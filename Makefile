# The front door. Every target is a thin call of a playbook or a script; `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV := .venv/bin

.PHONY: help setup up down cluster images cluster-health render test lint bench run-invoice-app run-payment-provider conformance prove-the-proofs
PLAYBOOK := $(VENV)/ansible-playbook

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-22s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## install Debian packages the tests use and the pinned .venv
	scripts/setup.sh

up: setup ## the main job: ansible-playbook site.yml (cluster, images, deploy, verify)
	$(PLAYBOOK) site.yml

down: setup ## remove the platform and, for the local provider, the cluster
	$(PLAYBOOK) playbooks/teardown.yml

cluster: setup ## only the cluster stage
	$(PLAYBOOK) playbooks/cluster.yml

images: setup ## only the images stage: Debian's dockerd, base images, the content-hashed service images
	$(PLAYBOOK) playbooks/images.yml

cluster-health: ## each local cluster component's state, and the log of any that is down
	/usr/local/bin/invoicing-cluster-health

render: setup ## write what deploy would apply to out/<env>/ (ENV=dev|prod; prod reads INVOICING_VAULT_PASSWORD), touching no cluster
	mkdir -p out/$(or $(ENV),dev)
	$(PLAYBOOK) -i inventories/$(or $(ENV),dev) $(if $(filter prod,$(ENV)),--vault-id prod@inventories/prod/vault-client.sh) \
		playbooks/deploy.yml -e platform_render_dir=$(CURDIR)/out/$(or $(ENV),dev)

test: ## run every test tier, fastest first (what CI runs)
	scripts/test.sh

conformance: ## upstream e2e suites (Netpol, Services/DNS [Conformance], Pod Security) in full; out/conformance/
	CONFORMANCE_SCOPE=full scripts/test.sh conformance

prove-the-proofs: ## break each property an e2e proof claims, on the deployed platform, and watch the proof fail
	MUTATIONS_SCOPE=full scripts/test.sh proofs

lint: ## ruff, ansible-lint, the generated role tables (scripts/role-docs.py) and the docs' links
	scripts/test.sh lint

run-invoice-app: setup ## run invoice-app on 127.0.0.1:8081 (SQLite, provider on :8082)
	cd services && ../$(VENV)/python -m invoice_app

run-payment-provider: setup ## run payment-provider on 127.0.0.1:8082 (SQLite ledger, no token: local only)
	cd services && PAYMENT_PROVIDER_ALLOW_NO_TOKEN=$${PAYMENT_PROVIDER_ALLOW_NO_TOKEN:-true} ../$(VENV)/python -m payment_provider

bench: setup ## benchmarks against their floors on this machine; writes out/bench.json
	$(VENV)/python -m tests.bench
