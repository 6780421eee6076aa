#!/bin/sh
# The prod vault's password client, for `--vault-id`: it prints the password that the operator
# (or CI's secret store) puts in INVOICING_VAULT_PASSWORD, so no password file sits next to the
# vault. Ansible treats it as a client script because its name ends in -client:
#   export INVOICING_VAULT_PASSWORD=...
#   ansible-playbook -i inventories/prod --vault-id prod@inventories/prod/vault-client.sh site.yml
# Ansible passes `--vault-id <label>`; one password serves every label here.
set -eu
if [ -z "${INVOICING_VAULT_PASSWORD:-}" ]; then
  echo "$0: INVOICING_VAULT_PASSWORD is not set: export the password of inventories/prod's vault" >&2
  exit 1
fi
printf '%s\n' "$INVOICING_VAULT_PASSWORD"
