"""The role's `import-images` task file: a local Docker image becomes runnable in the cluster."""

import os
import re
import shutil
import subprocess
import tempfile
import uuid

import pytest

from tests.ansible.conftest import playbook
from tests.cluster.conftest import (
    TEST_IMAGE_DOCKERFILE,
    apply,
    ctr,
    docker_build,
    pod,
    wait_pod_ready,
)
from tests.support import REPO

pytestmark = pytest.mark.cluster

PLAYBOOK = """
- name: Import a Docker image into the local cluster
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Import it
      ansible.builtin.include_role:
        name: local_cluster
        tasks_from: import-images
      vars:
        local_cluster_import_images: ["{image}"]
"""


def docker_running() -> bool:
    return shutil.which("docker") is not None and (
        subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0
    )


@pytest.fixture
def docker_image() -> str:
    """A tiny image in Docker, built from busybox in an empty root (no pulls)."""
    assert docker_running(), "no Docker engine: the cluster stage (roles/docker_engine) starts one"
    tag = f"lc-import-test:{uuid.uuid4().hex[:8]}"
    # Content of its own (a label), so that no other image shares its Docker image id.
    docker_build(tag, TEST_IMAGE_DOCKERFILE + f'LABEL io.invoicing-platform.test="{tag}"\n')
    yield tag
    subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
    ref = f"docker.io/library/{tag}"
    ctr("images", "rm", ref, check=False)


def run_import(image: str) -> int:
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as playbook_file:
        playbook_file.write(PLAYBOOK.format(image=image))
    try:
        result = playbook(playbook_file.name, check=False, ANSIBLE_ROLES_PATH=str(REPO / "roles"))
    finally:
        os.unlink(playbook_file.name)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return int(re.search(r"localhost\s*:.*changed=(\d+)", result.stdout).group(1))


def test_import_image_makes_a_docker_image_runnable_and_is_skipped_when_present(
    cluster: str, docker_image: str, namespaces
) -> None:
    assert run_import(docker_image) == 1
    assert run_import(docker_image) == 0  # same digest already in containerd: nothing to do

    ns = namespaces("import")
    spec = pod(ns, "imported", docker_image, ["sleep", "3600"])
    spec["spec"]["containers"][0]["imagePullPolicy"] = "Never"  # only the imported copy will do
    apply(spec)
    wait_pod_ready(ns, "imported")
