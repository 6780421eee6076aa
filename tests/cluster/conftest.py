"""Fixtures for the local cluster's acceptance tests: a running cluster, kubectl, a test image.

The cluster is the real one the `local_cluster` role runs on this machine. When it is not
healthy, the session fixture brings it up with playbooks/cluster.yml first.
"""

import glob
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.ansible.conftest import playbook

KUBECONFIG = os.environ.get("LOCAL_CLUSTER_KUBECONFIG", "/etc/invoicing-platform/admin.kubeconfig")
KUBECTL = os.environ.get("LOCAL_CLUSTER_KUBECTL", "/usr/local/bin/kubectl")
HEALTH = "/usr/local/bin/invoicing-cluster-health"
CONTAINERD_SOCKET = "/run/invoicing-platform/containerd/containerd.sock"
TEST_IMAGE = "invoicing-platform.local/testbox:1.35"
BUSYBOX = "/bin/busybox"
# The test pods' image: Debian's static busybox with every applet linked, and the writable
# directories the tests use. Built by Docker from an empty root, like the cluster's own images.
TEST_IMAGE_DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/mkdir", "-p", "-m", "1777", "/tmp"]
RUN ["/bin/mkdir", "-p", "-m", "0777", "/data"]
RUN ["/bin/mkdir", "-p", "-m", "0755", "/www"]
ENTRYPOINT ["/bin/sh"]
"""


def docker_build(tag: str, dockerfile: str = TEST_IMAGE_DOCKERFILE) -> None:
    """Build `tag` with Docker from busybox and `dockerfile`, without network."""
    with tempfile.TemporaryDirectory() as context:
        shutil.copy(BUSYBOX, f"{context}/busybox")
        Path(context, "Dockerfile").write_text(dockerfile)
        subprocess.run(
            ["docker", "build", "--network=none", "-q", "-t", tag, context],
            check=True,
            capture_output=True,
        )


# How many nodes this tier's cluster has (scripts/test.sh's nodes tier runs it with 3).
NODES = int(os.environ.get("LOCAL_CLUSTER_NODES", "1"))


def ansible_playbook(*args: str) -> subprocess.CompletedProcess:
    """A playbook run whose failure the caller reports; a cold bring-up may take an hour."""
    return playbook(*args, "-e", f"local_cluster_nodes={NODES}", check=False, timeout=3600)


# Each worker node's containerd, as this host reaches it (its socket directory is bind-mounted).
WORKER_CONTAINERD_SOCKETS = "/var/lib/invoicing-platform/cluster-nodes/*/containerd/containerd.sock"


def containerd_sockets() -> list[str]:
    """Every node's containerd: this host's, then each worker's."""
    return [CONTAINERD_SOCKET, *sorted(glob.glob(WORKER_CONTAINERD_SOCKETS))]


def ctr(
    *args: str, check: bool = True, socket: str = CONTAINERD_SOCKET
) -> subprocess.CompletedProcess:
    """`ctr` against a node's containerd (this host's by default), in the kubelet's namespace."""
    return subprocess.run(
        ["ctr", "--address", socket, "-n", "k8s.io", *args],
        capture_output=True,
        text=True,
        check=check,
    )


def containerd_name(reference: str) -> str:
    """The full name containerd files an image reference under (`busybox:1` is
    `docker.io/library/busybox:1`)."""
    first = reference.split("/", 1)[0]
    if "/" not in reference:
        return f"docker.io/library/{reference}"
    if "." in first or ":" in first or first == "localhost":
        return reference
    return f"docker.io/{reference}"


def cluster_healthy() -> bool:
    return os.path.exists(HEALTH) and subprocess.run([HEALTH], capture_output=True).returncode == 0


def kubectl_run(
    *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """kubectl with the admin kubeconfig; the caller reads its exit code and both streams."""
    return subprocess.run(
        [KUBECTL, "--kubeconfig", KUBECONFIG, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def kubectl(*args: str, stdin: str | None = None, check: bool = True, timeout: float = 120) -> str:
    result = kubectl_run(*args, stdin=stdin, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr or result.stdout}")
    return result.stdout if check else result.stdout + result.stderr


def apply(*objects: dict) -> None:
    kubectl(
        "apply",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}),
    )


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(scope="session")
def cluster() -> str:
    """A healthy local cluster; returns the admin kubeconfig path."""
    if not cluster_healthy():
        result = ansible_playbook("playbooks/cluster.yml")
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert cluster_healthy(), subprocess.run([HEALTH], capture_output=True, text=True).stdout
    return KUBECONFIG


@pytest.fixture(scope="session")
def test_image(cluster: str) -> str:
    """A small busybox image built here by Docker (no registry), imported into containerd."""
    listed = ctr("images", "ls", "-q", f"name=={TEST_IMAGE}").stdout
    if TEST_IMAGE not in listed:
        docker_build(TEST_IMAGE)
        import_docker_image(TEST_IMAGE)
    return TEST_IMAGE


def import_docker_image(tag: str) -> None:
    """Copies an image from Docker's store into the cluster's containerd, as the images stage
    does for the local provider."""
    saved = subprocess.run(["docker", "save", tag], capture_output=True, check=True)
    subprocess.run(
        ["ctr", "--address", CONTAINERD_SOCKET, "-n", "k8s.io", "images", "import", "-"],
        input=saved.stdout,
        capture_output=True,
        check=True,
    )


@pytest.fixture
def namespaces(cluster: str) -> Iterator[Callable[..., str]]:
    """Make namespaces (unique names, optional labels) that are deleted after the test."""
    made: list[str] = []

    def make(prefix: str, labels: dict[str, str] | None = None) -> str:
        made.append(make_namespace(prefix, labels))
        return made[-1]

    yield make
    for name in made:
        kubectl("delete", "namespace", name, "--wait=false", check=False)


def make_namespace(prefix: str, labels: dict[str, str] | None = None) -> str:
    """A namespace of a unique name (optional labels), once its default ServiceAccount exists
    (pods are refused before). The caller deletes it; the `namespaces` fixture does so itself."""
    name = f"lc-{prefix}-{uuid.uuid4().hex[:6]}"
    apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": labels or {}},
        }
    )
    wait_for(
        lambda: (
            "default" in kubectl("get", "serviceaccounts", "-n", name, "-o", "name", check=False)
        ),
        60,
        f"the default ServiceAccount in {name}",
    )
    return name


def restricted_container(name: str, image: str, command: list[str], **extra: object) -> dict:
    """A container that passes Pod Security `restricted`."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        **extra,
    }


def pod(
    namespace: str,
    name: str,
    image: str,
    command: list[str],
    labels: dict | None = None,
    **spec: object,
) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [restricted_container(name, image, command)],
            **spec,
        },
    }


def web_server(
    namespace: str, name: str, image: str, replicas: int = 1, text: str = ""
) -> list[dict]:
    """A Deployment of busybox httpd on port 8080 serving `text`, and its ClusterIP Service."""
    body = text or f"hello from {name} in {namespace}"
    labels = {"app": name}
    script = f"echo '{body}' > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        restricted_container(
                            "web",
                            image,
                            ["sh", "-c", script],
                            ports=[{"name": "http", "containerPort": 8080}],
                            readinessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                        )
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 8080, "targetPort": 8080}]},
    }
    return [deployment, service]


def wait_pod_ready(namespace: str, name: str, timeout: int = 120) -> None:
    kubectl(
        "wait",
        "--for=condition=Ready",
        f"pod/{name}",
        "-n",
        namespace,
        f"--timeout={timeout}s",
        timeout=timeout + 10,
    )


def exec_in(
    namespace: str, name: str, *command: str, timeout: float = 30
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", KUBECONFIG, "exec", "-n", namespace, name, "--", *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
