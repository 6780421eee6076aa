"""The deployed platform on the real local cluster, reached the way users reach it: the
Ingress on 127.0.0.1, and kubectl. `make test` deploys it (site.yml) before this tier runs."""

import base64
import functools
import json
import os
import time

import pytest

from tests.cluster.conftest import kubectl
from tests.support import Reply, http, wait_until

# Where the Ingress is, and the host it serves (the molecule prod scenario sets https and
# prod's host name).
INGRESS = os.environ.get("E2E_INGRESS_URL", "http://127.0.0.1")
HOST = os.environ.get("E2E_INGRESS_HOST", "invoices.localtest.me")
NAMESPACES = ("invoices", "payments")


@functools.cache
def api_token() -> str:
    """invoice-app's API token as deployed (prod sets one, dev leaves the pay routes open)."""
    encoded = kubectl(
        "get",
        "secret",
        "invoice-app-secrets",
        "-n",
        "invoices",
        "-o",
        "jsonpath={.data.INVOICE_APP_API_TOKEN}",
    )
    return base64.b64decode(encoded).decode() if encoded else ""


def public(
    method: str,
    path: str,
    body: bytes | str | None = None,
    timeout: float = 300,
    authorised: bool = True,
) -> Reply:
    """A request through the Ingress, as a client outside the cluster sends it; a POST carries
    invoice-app's API token when the platform has one (and `authorised`)."""
    headers = {"Host": HOST}
    if method == "POST" and authorised and api_token():
        headers["Authorization"] = f"Bearer {api_token()}"
    return http(method, f"{INGRESS}{path}", body, headers, timeout=timeout)


def pods(namespace: str, app: str) -> list[dict]:
    listed = kubectl(
        "get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/name={app}", "-o", "json"
    )
    return [p for p in json.loads(listed)["items"] if not p["metadata"].get("deletionTimestamp")]


def ready(pod: dict) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def wait_rolled_out(namespace: str, workload: str) -> None:
    """Waits until the rollout of `workload` (kind/name) has finished and its old pods are
    gone: while they drain they still answer the keep-alive connections clients opened to
    them, with the old configuration."""
    kubectl("rollout", "status", workload, "-n", namespace, "--timeout=240s", timeout=250)
    selector = json.loads(kubectl("get", workload, "-n", namespace, "-o", "json"))["spec"][
        "selector"
    ]["matchLabels"]
    labels = ",".join(f"{key}={value}" for key, value in selector.items())
    wait_until(
        lambda: (
            "deletionTimestamp"
            not in kubectl("get", "pods", "-n", namespace, "-l", labels, "-o", "json")
        ),
        120,
        f"the old pods of {workload} to be gone",
        interval=1,
    )


def in_pod_of(namespace: str, app: str, *python: str, timeout: float = 120, avoid: str = "") -> str:
    """Runs Python inside a Ready pod of `app` other than `avoid`, as that app (its labels,
    its policies)."""
    pod = next(
        p["metadata"]["name"]
        for p in pods(namespace, app)
        if ready(p) and p["metadata"]["name"] != avoid
    )
    return kubectl("exec", "-n", namespace, pod, "--", "python3", *python, timeout=timeout)


def in_invoice_app(*python: str, timeout: float = 120, avoid: str = "") -> str:
    """Runs Python inside a running invoice-app pod: the one place allowed to reach
    payment-provider and the database, so this is how tests read the provider's ledger."""
    return in_pod_of("invoices", "invoice-app", *python, timeout=timeout, avoid=avoid)


def provider_summary(avoid: str = "") -> dict:
    script = (
        "import os, urllib.request;"
        "request = urllib.request.Request("
        "'http://payment-provider.payments.svc.cluster.local:8082/payments/summary',"
        " headers={'Authorization': 'Bearer ' + os.environ.get('PAYMENT_PROVIDER_TOKEN', '')});"
        "print(urllib.request.urlopen(request, timeout=30).read().decode())"
    )
    return json.loads(in_invoice_app("-c", script, avoid=avoid))


def seed(count: int) -> None:
    in_invoice_app("-m", "invoice_app", "seed", str(count), timeout=300)


def pay_until_all_paid(within: float = 300) -> int:
    """Pay runs until nothing is pending; returns how many it took. Invoices a killed run had
    claimed stay leased to it until the lease expires (the pay deadline plus the longest
    charge, about 90 s with the defaults), so this keeps paying for up to `within` seconds."""
    deadline = time.monotonic() + within
    runs = 0
    while time.monotonic() < deadline:
        runs += 1
        reply = public("POST", "/invoices/pay")
        if reply.status == 200 and not reply.body["unpaid"] and all_paid():
            return runs
        time.sleep(2)
    raise AssertionError(f"invoices still unpaid after {runs} pay runs in {within:.0f} s")


def all_paid() -> bool:
    listed = public("GET", "/invoices")
    return listed.status == 200 and all(i["IsPaid"] for i in listed.body)


@pytest.fixture(scope="session", autouse=True)
def deployed() -> None:
    """The platform must already be deployed and answering; this tier does not deploy it."""
    reply = public("GET", "/invoices?limit=1", timeout=30)
    assert reply.status == 200, f"the platform does not answer through the Ingress: {reply}"
