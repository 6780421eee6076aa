"""The engine the images stage starts: dockerd under its own supervisord, with its own
containerd, never the local cluster's."""

import subprocess
from pathlib import Path

import pytest

from tests.images.conftest import StageRun, docker

SUPERVISOR_CONF = "/etc/invoicing-platform/docker-supervisord.conf"
DOCKERD_PIDFILE = Path("/run/invoicing-platform/dockerd.pid")


def test_dockerd_runs_under_its_supervisord_with_a_containerd_of_its_own(stage: StageRun) -> None:
    status = subprocess.run(
        ["supervisorctl", "-c", SUPERVISOR_CONF, "status", "dockerd"],
        capture_output=True,
        text=True,
        check=False,
    )
    if "no such file" in status.stdout:
        assert docker("info", "--format", "{{.ServerVersion}}")
        pytest.skip("an engine the role did not start answers; the role uses it as it is")
    assert "RUNNING" in status.stdout, status.stdout
    pid = DOCKERD_PIDFILE.read_text().strip()
    assert f"pid {pid}," in status.stdout
    assert Path(f"/proc/{pid}/exe").resolve() == Path("/usr/sbin/dockerd")

    children = subprocess.run(
        ["ps", "-o", "args=", "--ppid", pid], capture_output=True, text=True, check=True
    ).stdout
    assert "containerd --config /var/run/docker/containerd/containerd.toml" in children
    assert Path("/run/docker/containerd/containerd.sock").is_socket()
