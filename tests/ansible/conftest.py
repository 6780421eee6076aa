"""Runs ansible-playbook the way a user does, from the repository root."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

VENV_BIN = Path(sys.executable).parent
PROD_VAULT = ["--vault-id", "prod@inventories/prod/vault-client.sh"]
# DEMO ONLY: the password of the demo vault committed in inventories/prod/group_vars/all/
# vault.yml, which holds nothing but demo secrets. CI sets no secret, so the tests give the
# vault client this one; a real prod vault gets a new password that lives in no file here.
DEMO_VAULT_PASSWORD = "invoicing-demo-vault-password"


# A play's last recap line for this host: ok=, changed=, unreachable=, failed=.
RECAP = re.compile(
    r"^localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M
)


def recap(output: str) -> dict[str, int]:
    """The counts of the last recap in ansible-playbook's output (failed counts unreachable)."""
    found = RECAP.findall(output)
    assert found, f"no play recap in the output:\n{output[-3000:]}"
    ok, changed, unreachable, failed = map(int, found[-1])
    return {"ok": ok, "changed": changed, "failed": failed + unreachable}


def changed_tasks(output: str) -> list[str]:
    """The names of the tasks that reported a change, in the order they ran."""
    changed, task = [], ""
    for line in output.splitlines():
        if line.startswith("TASK ["):
            task = line[len("TASK [") : line.index("]")]
        elif line.startswith("changed:"):
            changed.append(task)
    return changed


def ansible_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "INVOICING_VAULT_PASSWORD": DEMO_VAULT_PASSWORD,
        **extra,
    }


def playbook(
    *args: str, check: bool = True, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [VENV_BIN / "ansible-playbook", *args],
        cwd=REPO,
        env=ansible_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        pytest.fail(f"ansible-playbook {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def extra_vars(values: dict) -> list[str]:
    return ["-e", json.dumps(values)]
