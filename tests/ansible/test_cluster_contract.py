"""The provider contract of roles/cluster: each provider publishes the same facts, which later
stages read, and the inventories hold static data only."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.ansible.conftest import PROD_VAULT, extra_vars, playbook
from tests.support import REPO

CONTRACT = {
    "cluster_published_by",
    "cluster_kubeconfig_path",
    "cluster_context_name",
    "cluster_entry_url",
    "cluster_image_target",
}


@pytest.fixture
def connection_play(tmp_path: Path) -> Path:
    """cluster's connection entry point, as every playbook runs it, then what it published."""
    facts = ", ".join(f"'{name}': {name}" for name in sorted(CONTRACT))
    play = tmp_path / "play.yml"
    play.write_text(
        f"""
- hosts: platform
  gather_facts: true
  gather_subset: [min]
  tasks:
    - ansible.builtin.include_role:
        name: cluster
        tasks_from: connection
    - ansible.builtin.debug:
        msg: "RESULT {{{{ {{{facts}}} | to_json }}}}"
"""
    )
    return play


def published(output: str) -> dict:
    line = next(line for line in output.splitlines() if '"msg": "RESULT ' in line)
    return json.loads(json.loads(line.split('"msg": ', 1)[1]).removeprefix("RESULT "))


def test_the_local_provider_publishes_its_admin_kubeconfig_traefik_and_containerd(
    connection_play: Path,
) -> None:
    run = playbook(str(connection_play), *extra_vars({"cluster_provider": "local"}))
    assert published(run.stdout) == {
        "cluster_published_by": "local",
        "cluster_kubeconfig_path": "/etc/invoicing-platform/admin.kubeconfig",
        "cluster_context_name": "",
        "cluster_entry_url": "http://127.0.0.1",
        "cluster_image_target": {"type": "local"},
    }


def test_the_existing_provider_publishes_the_prod_inventory_values(connection_play: Path) -> None:
    run = playbook("-i", "inventories/prod", *PROD_VAULT, str(connection_play))
    facts = published(run.stdout)
    assert facts["cluster_published_by"] == "existing"
    assert facts["cluster_kubeconfig_path"].endswith("/.kube/config")
    assert not facts["cluster_kubeconfig_path"].startswith("~")
    assert facts["cluster_context_name"] == "prod"
    assert facts["cluster_entry_url"] == "https://invoices.example.com"
    assert facts["cluster_image_target"] == {
        "type": "registry",
        "registry": "registry.example.com",
        "registry_scheme": "https",
    }


def with_fake_minikube(
    connection_play: Path, tmp_path: Path, script: str, check: bool = True
) -> subprocess.CompletedProcess:
    """The connection play with the minikube provider, whose binary is a shell `script`."""
    binary = tmp_path / "minikube"
    binary.write_text(f"#!/bin/sh\n{script}")
    binary.chmod(0o755)
    return playbook(
        str(connection_play),
        *extra_vars({"cluster_provider": "minikube", "minikube_install_dir": str(tmp_path)}),
        check=check,
    )


def test_the_minikube_provider_publishes_its_profile_and_node_address(
    connection_play: Path, tmp_path: Path
) -> None:
    run = with_fake_minikube(
        connection_play, tmp_path, '[ "$1 $3" = "ip invoicing" ] && echo 192.168.49.2\n'
    )
    facts = published(run.stdout)
    assert facts["cluster_context_name"] == "invoicing"
    assert facts["cluster_entry_url"] == "http://192.168.49.2"
    assert facts["cluster_image_target"] == {
        "type": "minikube",
        "minikube_binary": f"{tmp_path}/minikube",
        "minikube_profile": "invoicing",
    }


def test_a_minikube_profile_that_does_not_run_fails_with_what_to_do(
    connection_play: Path, tmp_path: Path
) -> None:
    run = with_fake_minikube(
        connection_play, tmp_path, "echo 'profile not found' >&2\nexit 85\n", check=False
    )
    assert run.returncode != 0
    assert "minikube profile invoicing does not run" in run.stdout


def test_a_malformed_publication_is_rejected_before_any_fact_is_set(tmp_path: Path) -> None:
    play = tmp_path / "play.yml"
    play.write_text(
        """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: cluster
        tasks_from: publish
      vars:
        cluster_published_by: existing
        cluster_kubeconfig_path: /x
        cluster_context_name: ""
        cluster_entry_url: https://x
        cluster_image_target: {type: registry}
"""
    )
    run = playbook(str(play), check=False)
    assert run.returncode != 0
    assert "type is registry but all of the following are missing" in run.stdout


def test_inventories_read_no_runtime_fact_and_run_no_shell_lookup() -> None:
    """Data flows from the providers to the stages, never back through an inventory."""
    forbidden = ("cluster_provider_resolved", "ansible_facts", "'pipe'", "ansible.builtin.pipe")
    for path in [*REPO.glob("inventories/**/*.yml"), *REPO.glob("molecule/*/host_vars/*.yml")]:
        text = path.read_text()
        for name in (*forbidden, *CONTRACT):
            assert not re.search(rf"(?<![a-z_]){re.escape(name)}", text), f"{path}: {name}"


def test_every_provider_role_has_a_connection_entry_point() -> None:
    for role in ("minikube", "local_cluster", "existing_cluster"):
        assert (REPO / "roles" / role / "tasks" / "connection.yml").is_file(), role
