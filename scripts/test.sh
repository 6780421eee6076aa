#!/usr/bin/env bash
# Runs every test tier, fastest first, and stops at the first tier that fails.
#   scripts/test.sh            all tiers
#   scripts/test.sh unit ...   only the named tiers: lint unit integration
set -euo pipefail
cd "$(dirname "$0")/.."

all_tiers=(lint unit integration)
tiers=("${@:-${all_tiers[@]}}")

scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

banner() { printf '\n==> [%s] %s\n' "$(date +%T)" "$*"; }

for tier in "${tiers[@]}"; do
  case $tier in
    lint)
      banner "lint: ruff"
      ruff check services tests
      ruff format --check services tests
      ;;
    unit)
      banner "unit tests"
      pytest tests/unit
      ;;
    integration)
      banner "integration tests: real services on 127.0.0.1, real PostgreSQL"
      pytest tests/integration
      ;;
    *)
      echo "unknown tier: $tier (known: ${all_tiers[*]})" >&2
      exit 2
      ;;
  esac
done
banner "all requested tiers passed: ${tiers[*]}"
