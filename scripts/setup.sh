#!/usr/bin/env bash
# Prepares this machine to run the project: the Debian packages the tests use, and .venv with
# every pinned Python dependency (Ansible and its collections included). Safe to re-run: it
# does only what is missing. Everything the cluster and the images need beyond this, the
# Ansible roles install themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL for the integration tests' own server; wrk for the read benchmarks; for the
# conformance tier's e2e images: busybox-static, dig, curl, OpenBSD's nc and dash.
debian_packages=(postgresql wrk python3-venv busybox-static bind9-dnsutils curl netcat-openbsd dash)

say() { printf '==> %s\n' "$*"; }

if command -v apt-get >/dev/null 2>&1; then
  missing=()
  for package in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
  done
  if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || { echo "setup: need root to install: ${missing[*]}" >&2; exit 1; }
    say "installing Debian packages: ${missing[*]}"
    # apt-cache knows nothing until the lists exist; refresh them when missing or a day old.
    if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null) ]]; then
      apt-get update -qq
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "setup: Python 3.11 or newer is required (found $("$python" --version))" >&2; exit 1; }

# The venv is rebuilt only when a pin changed: the stamp holds the pins' checksum.
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt services/requirements.txt | sha256sum | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  say "creating .venv with the pinned requirements"
  "$python" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  echo "$want" >"$stamp"
fi
say "setup done: $(.venv/bin/ansible --version | head -1), $(.venv/bin/python --version)"
