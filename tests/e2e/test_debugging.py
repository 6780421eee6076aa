"""The service images are distroless, so a pod of theirs has no shell to exec into; an
ephemeral container (`kubectl debug`) is the way in, and it must still reach the service's
processes and files. Run on a pod this test makes, in a namespace of its own."""

import json
import uuid
from collections.abc import Iterator

import pytest

from tests.cluster.conftest import apply, ctr, exec_in, kubectl, pod, wait_pod_ready
from tests.support import wait_until


@pytest.fixture
def service_pod() -> Iterator[tuple[str, str]]:
    """A pod of the deployed invoice-app image, on SQLite, in a restricted namespace."""
    image = json.loads(kubectl("get", "deployment", "invoice-app", "-n", "invoices", "-o", "json"))[
        "spec"
    ]["template"]["spec"]["containers"][0]["image"]
    namespace = f"e2e-debug-{uuid.uuid4().hex[:6]}"
    enforce = {"pod-security.kubernetes.io/enforce": "restricted"}
    apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": enforce},
        }
    )
    wait_until(
        lambda: "default" in kubectl("get", "sa", "-n", namespace, "-o", "name", check=False),
        60,
        f"the default ServiceAccount in {namespace}",
    )
    service = pod(namespace, "app", image, ["python3", "-m", "invoice_app"])
    container = service["spec"]["containers"][0]
    container["securityContext"].update(
        runAsUser=10001, runAsGroup=10001, readOnlyRootFilesystem=True
    )
    container["env"] = [{"name": "DATABASE_URL", "value": "sqlite:////tmp/invoices.db"}]
    container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    service["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    apply(service)
    wait_pod_ready(namespace, "app")
    yield namespace, "app"
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def debug_image() -> str:
    """busybox, which the local cluster builds for its own helper pods, has the shell and tools."""
    listed = ctr("images", "ls", "-q").stdout.split()
    return next(ref for ref in listed if "/busybox:" in ref)


def test_a_service_pod_has_no_shell_and_kubectl_debug_still_reaches_its_process(
    service_pod: tuple[str, str], tmp_path
) -> None:
    namespace, name = service_pod
    # No shell, so no `kubectl exec ... sh`: the image holds Python and the service only.
    shell = exec_in(namespace, name, "sh", "-c", "true")
    assert shell.returncode != 0
    assert "executable file not found" in shell.stdout + shell.stderr
    # Positive control: exec itself works, into the one binary there is.
    assert exec_in(namespace, name, "python3", "-c", "print(6 * 7)").stdout.strip() == "42"

    # An ephemeral container that passes Pod Security restricted, as the service's own user,
    # sharing its process namespace (--target).
    custom = tmp_path / "as-the-service.json"
    custom.write_text(json.dumps({"securityContext": {"runAsUser": 10001, "runAsGroup": 10001}}))
    script = "ps; ls /proc/1/root/app; wget -qO- 127.0.0.1:8081/healthz"
    kubectl(
        "debug", name, "-n", namespace, f"--image={debug_image()}", "--image-pull-policy=Never",
        "--target=app", "--profile=restricted", f"--custom={custom}", "-c", "debugger",
        "--attach=false", "--", "sh", "-c", script,
    )  # fmt: skip
    wait_until(
        lambda: (
            '"status":"ok"' in kubectl("logs", name, "-n", namespace, "-c", "debugger", check=False)
        ),
        60,
        "the debug container's output",
    )
    seen = kubectl("logs", name, "-n", namespace, "-c", "debugger")
    assert "python3 -m invoice_app" in seen  # the service's process, from beside it
    assert "invoice_app" in seen.splitlines()  # its files, through /proc/1/root
