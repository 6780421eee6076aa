"""Runs ansible-playbook the way a user does, from the repository root."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

VENV_BIN = Path(sys.executable).parent
PROD_VAULT = ["--vault-password-file", "inventories/prod/demo-vault-password.txt"]


def ansible_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
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
