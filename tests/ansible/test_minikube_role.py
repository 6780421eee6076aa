"""The minikube role up to the line this machine draws (no internet, so no real download):
the release chosen per OS and CPU, the start guard, and a fast, clear download failure."""

import json
import socket
import time
from pathlib import Path

import pytest

from tests.ansible.conftest import extra_vars, playbook
from tests.support import free_port


@pytest.fixture
def role_play(tmp_path: Path) -> Path:
    """A play that runs one of the role's task files with the given variables."""
    play = tmp_path / "play.yml"
    play.write_text(
        """
- hosts: localhost
  gather_facts: false
  vars:
    minikube_host_os: Linux
    minikube_host_arch: x86_64
  tasks:
    - ansible.builtin.include_role:
        name: minikube
        tasks_from: "{{ entry }}"
    - ansible.builtin.debug:
        msg: "RESULT {{ {'url': __minikube_url | default(''),
                         'checksum': __minikube_checksum | default('')} | to_json }}"
"""
    )
    return play


def result_of(output: str) -> dict:
    line = next(line for line in output.splitlines() if '"msg": "RESULT ' in line)
    return json.loads(json.loads(line.split('"msg": ', 1)[1]).removeprefix("RESULT "))


@pytest.mark.parametrize(
    ("system", "machine", "platform"),
    [
        ("Linux", "x86_64", "linux-amd64"),
        ("Linux", "aarch64", "linux-arm64"),
        ("Darwin", "arm64", "darwin-arm64"),
        ("Darwin", "x86_64", "darwin-amd64"),
    ],
)
def test_release_url_and_checksum_follow_the_host(
    role_play: Path, system: str, machine: str, platform: str
) -> None:
    run = playbook(
        str(role_play),
        *extra_vars(
            {
                "entry": "select-release.yml",
                "minikube_host_os": system,
                "minikube_host_arch": machine,
            }
        ),
    )
    result = result_of(run.stdout)
    assert result["url"] == (
        f"https://github.com/kubernetes/minikube/releases/download/v1.34.0/minikube-{platform}"
    )
    assert result["checksum"] == f"sha256:{result['url']}.sha256"


def test_a_pinned_checksum_wins_over_the_published_one(role_play: Path) -> None:
    pin = "a" * 64
    run = playbook(
        str(role_play),
        *extra_vars({"entry": "select-release.yml", "minikube_sha256": {"linux-amd64": pin}}),
    )
    assert result_of(run.stdout)["checksum"] == f"sha256:{pin}"


def test_an_unsupported_host_fails_before_any_download(role_play: Path) -> None:
    run = playbook(
        str(role_play),
        *extra_vars({"entry": "select-release.yml", "minikube_host_os": "Windows"}),
        check=False,
    )
    assert run.returncode != 0
    assert "minikube has no release for Windows/x86_64" in run.stdout


@pytest.fixture
def fake_minikube(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in minikube binary that prints a chosen status and records its calls: the
    role's guard logic runs for real against it."""
    calls = tmp_path / "calls.log"
    binary = tmp_path / "bin" / "minikube"
    binary.parent.mkdir()
    binary.write_text(
        f"""#!/bin/sh
echo "$*" >> {calls}
case "$1" in
  version) echo v1.34.0 ;;
  status) cat {tmp_path}/status.json; exit "$(cat {tmp_path}/status.rc)" ;;
esac
"""
    )
    binary.chmod(0o755)
    return binary.parent, calls


def status(host: str, kubelet: str, apiserver: str) -> str:
    return json.dumps(
        {"Name": "invoicing", "Host": host, "Kubelet": kubelet, "APIServer": apiserver}
    )


@pytest.mark.parametrize(
    ("status", "rc", "starts"),
    [
        (status("Running", "Running", "Running"), 0, False),
        (status("Stopped", "Stopped", "Stopped"), 7, True),
        (status("Running", "Running", "Stopped"), 2, True),
        ("", 85, True),
    ],
)
def test_start_runs_only_when_status_says_not_running(
    role_play: Path, fake_minikube: tuple[Path, Path], status: str, rc: int, starts: bool
) -> None:
    bin_dir, calls = fake_minikube
    (bin_dir.parent / "status.json").write_text(status)
    (bin_dir.parent / "status.rc").write_text(str(rc))
    playbook(
        str(role_play), *extra_vars({"entry": "start.yml", "minikube_install_dir": str(bin_dir)})
    )
    started = [c for c in calls.read_text().splitlines() if c.startswith("start")]
    assert bool(started) is starts
    if starts:
        assert "--cni=calico" in started[0]
        assert "--addons=ingress" in started[0]
        assert "--container-runtime=containerd" in started[0]
        assert "-p invoicing" in started[0]


def test_an_unreachable_download_fails_fast_and_names_the_offline_provider(
    role_play: Path, tmp_path: Path
) -> None:
    port = free_port()
    listener = socket.socket()
    listener.bind(("127.0.0.1", port))  # bound, never accepting: a download that hangs
    listener.listen(0)
    started = time.monotonic()
    run = playbook(
        str(role_play),
        *extra_vars(
            {
                "entry": "main.yml",
                "minikube_install_dir": str(tmp_path),
                "minikube_download_base_url": f"http://127.0.0.1:{port}",
                "minikube_download_timeout": 3,
            }
        ),
        check=False,
    )
    listener.close()
    assert run.returncode != 0
    assert "cluster_provider=local" in run.stdout
    assert time.monotonic() - started < 60
