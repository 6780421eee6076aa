"""The role's `import-image` task file: a local Docker image becomes runnable in the cluster."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.ansible.conftest import playbook
from tests.cluster.conftest import (
    BUSYBOX,
    ROLE,
    apply,
    ctr,
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
        tasks_from: import-image
      vars:
        local_cluster_import_image: "{image}"
"""


def docker_running() -> bool:
    return shutil.which("docker") is not None and (
        subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0
    )


@pytest.fixture
def docker_image() -> str:
    """A tiny image in Docker, made by `docker import` of a busybox rootfs (no pulls)."""
    if not docker_running():
        pytest.skip("no Docker engine running (roles/docker_engine starts one)")
    tag = f"lc-import-test:{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        tarball = f"{tmp}/rootfs.tar"
        subprocess.run(
            [
                sys.executable,
                str(ROLE / "files" / "mkimage.py"),
                "--tag=x",
                f"--out={tmp}/image.tar",
                f"--file={BUSYBOX}:/bin/busybox",
                "--symlink=/bin/sh:busybox",
                "--symlink=/bin/sleep:busybox",
            ],
            check=True,
            capture_output=True,
        )
        # mkimage writes a docker-save archive; its one layer is the rootfs `docker import` takes.
        subprocess.run(["tar", "-xf", f"{tmp}/image.tar", "-C", tmp], check=True)
        layer = next(Path(tmp).glob("*/layer.tar"))
        shutil.copy(layer, tarball)
        subprocess.run(["docker", "import", tarball, tag], check=True, capture_output=True)
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
