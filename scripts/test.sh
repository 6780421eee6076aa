#!/usr/bin/env bash
# Runs every test tier, fastest first, and stops at the first tier that fails.
#   scripts/test.sh            all tiers
#   scripts/test.sh unit ...   only the named tiers:
#       lint unit integration ansible images cluster conformance site proofs molecule
# The tiers from `images` on build and run the real local cluster (the first time on a machine
# that compiles Kubernetes: ~15 minutes on 2 cores, cached afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."

all_tiers=(lint unit integration ansible images cluster conformance site proofs molecule nodes)
tiers=("${@:-${all_tiers[@]}}")

scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

banner() { printf '\n==> [%s] %s\n' "$(date +%T)" "$*"; }

for tier in "${tiers[@]}"; do
  case $tier in
    lint)
      # The one place CI runs ansible-lint (it reads .ansible-lint: production profile, offline).
      banner "lint: ruff, the generated role tables, the documentation's links, ansible-lint"
      ruff check services tests scripts
      ruff format --check services tests scripts
      python scripts/role-docs.py --check
      python scripts/check-links.py
      ansible-lint
      ;;
    unit)
      banner "unit tests"
      pytest tests/unit
      ;;
    integration)
      banner "integration tests: real services on 127.0.0.1, real PostgreSQL"
      pytest tests/integration
      ;;
    ansible)
      banner "Ansible gates: syntax, manifests against the Kubernetes schema (ansible-lint is in lint)"
      pytest tests/ansible
      ;;
    images)
      # The local provider imports the images into the cluster's containerd: cluster first.
      banner "cluster stage: bring-up (progress per component; a cold build compiles Kubernetes)"
      ansible-playbook playbooks/cluster.yml
      banner "images: Debian's dockerd, the base from Debian packages, the service images"
      ansible-playbook playbooks/images.yml
      pytest tests/images
      ;;
    cluster)
      banner "local cluster acceptance checks, then its lifecycle (teardown and warm bring-up)"
      ansible-playbook playbooks/cluster.yml
      pytest tests/cluster
      ;;
    conformance)
      # CONFORMANCE_SCOPE=full (make conformance) runs the whole selection; CI the subset.
      banner "upstream e2e suites against the local cluster (${CONFORMANCE_SCOPE:-ci} scope)"
      ansible-playbook playbooks/cluster.yml
      pytest tests/conformance
      ;;
    site)
      banner "site.yml on the local cluster: converge and verify, then a run that changes nothing"
      pytest tests/site -s
      ;;
    proofs)
      # MUTATIONS_SCOPE=full (make prove-the-proofs) runs every breakage; CI the quick ones.
      banner "mutations: each e2e proof must fail with its property broken (${MUTATIONS_SCOPE:-ci} scope)"
      ansible-playbook site.yml
      pytest tests/mutations -p no:cacheprovider
      ;;
    molecule)
      for scenario in default prod; do
        banner "molecule test -s $scenario: converge, idempotence, verify with the end-to-end proofs"
        molecule test -s "$scenario"
      done
      ;;
    nodes)
      # Last: it tears the one-node cluster down and leaves three nodes up (the next run of
      # any other tier brings one node back, tearing the three down).
      banner "three nodes: lifecycle (bring-up, rerun, teardown, warm bring-up), upstream suites, molecule multinode"
      ansible-playbook playbooks/cluster.yml -e local_cluster_nodes=3
      LOCAL_CLUSTER_NODES=3 pytest tests/cluster/test_lifecycle.py -rP
      # Pod Security admission does not depend on where pods run: it ran in the conformance tier.
      pytest tests/conformance -k "not pod_security"
      molecule test -s multinode
      ;;
    *)
      echo "unknown tier: $tier (known: ${all_tiers[*]})" >&2
      exit 2
      ;;
  esac
done
banner "all requested tiers passed: ${tiers[*]}"
