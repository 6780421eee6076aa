"""The deployed platform on the real local cluster, reached the way users reach it: the
Ingress on 127.0.0.1, and kubectl. `make test` deploys it (site.yml) before this tier runs."""

import base64
import functools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from tests.cluster.conftest import kubectl
from tests.support import Reply, http, wait_until

# Where the Ingress is, and the host it serves (the molecule prod scenario sets https and
# prod's host name).
INGRESS = os.environ.get("E2E_INGRESS_URL", "http://127.0.0.1")
HOST = os.environ.get("E2E_INGRESS_HOST", "invoices.localtest.me")
NAMESPACES = ("invoices", "payments")
# Each service's namespace and name (its Deployment, and its pods' app.kubernetes.io/name).
SERVICES = (("invoices", "invoice-app"), ("payments", "payment-provider"))


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
    runs, unanswered = 0, []
    while time.monotonic() < deadline:
        runs += 1
        try:
            reply = public("POST", "/invoices/pay")
            if reply.status == 200 and not reply.body["unpaid"] and all_paid():
                return runs
        except OSError as error:
            # A run whose answer was lost (its pod went with a node): the next one pays what
            # it left, once the leases lapse.
            unanswered.append(repr(error))
        time.sleep(2)
    raise AssertionError(
        f"invoices still unpaid after {runs} pay runs in {within:.0f} s;"
        f" requests without an answer: {unanswered[-3:]}"
    )


def all_paid() -> bool:
    listed = public("GET", "/invoices")
    return listed.status == 200 and all(i["IsPaid"] for i in listed.body)


# Traffic through the Ingress, as clients keep sending it while a proof disturbs the platform.


@dataclass
class Traffic:
    """What a thread of GETs through the Ingress got: an HTTP status per request, 0 for a
    request that got no answer at all."""

    outcomes: list[int] = field(default_factory=list)

    @property
    def failed(self) -> list[int]:
        return [status for status in self.outcomes if status != 200]

    def answered(self, at_least: int) -> None:
        wait_until(lambda: len(self.outcomes) >= at_least, 60, f"{at_least} requests answered")


@contextmanager
def ingress_traffic(path: str = "/invoices?limit=10", bound: float = 240) -> Iterator[Traffic]:
    """GETs of `path` through the Ingress, one after another, while the block runs, and never
    longer than `bound` seconds, whatever happens."""
    traffic, stop = Traffic(), threading.Event()

    def send() -> None:
        deadline = time.monotonic() + bound
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                traffic.outcomes.append(public("GET", path, timeout=10).status)
            except Exception:  # no answer is a failed request, and must not end the thread
                traffic.outcomes.append(0)
            time.sleep(0.02)

    worker = threading.Thread(target=send)
    worker.start()
    try:
        yield traffic
    finally:
        stop.set()
        worker.join()


# A pay run from inside one invoice-app pod to itself: the test knows which pod serves it.
PAY_IN_POD = (
    "import os, urllib.error, urllib.request;"
    "token = os.environ.get('INVOICE_APP_API_TOKEN', '');"
    "request = urllib.request.Request('http://127.0.0.1:8081/invoices/pay', data=b'',"
    " headers={'Authorization': 'Bearer ' + token} if token else {});"
    "\ntry: print(urllib.request.urlopen(request, timeout=300).status)"
    "\nexcept urllib.error.HTTPError as error: print(error.code)"
)


def kill_mid_run(
    fault: Callable[[], Callable[[str], None]], serving: str, count: int, within: float = 300
) -> dict:
    """Seeds `count` invoices, starts a pay run on the invoice-app pod `serving`, waits until
    the provider's ledger holds between 10% and 90% of the new charges (the run is provably
    mid-way), applies the fault, checks it landed (the fault's check gets the run's answer),
    then pays until nothing is pending, for up to `within` seconds. Returns figures: the
    charges and the payments charged twice since the seeding."""
    pay_until_all_paid()  # nothing pending, so every charge from here on is one of the new
    before = provider_summary()
    seed(count)
    answer: list[str] = []
    run = threading.Thread(
        target=lambda: answer.append(
            kubectl(
                "exec", "-n", "invoices", serving, "--", "python3", "-c", PAY_IN_POD,
                check=False, timeout=300,
            )
        )
    )  # fmt: skip
    run.start()
    progress = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        progress = provider_summary(avoid=serving)["charged"] - before["charged"]
        if progress >= 0.1 * count:
            break
        time.sleep(0.2)
    check = fault()
    run.join()
    check(answer[0] if answer else "")
    # The fault landed mid-run: some, not all, of the run's charges were made before it.
    assert 0.1 * count <= progress <= 0.9 * count, f"killed at {progress} of {count} charges"
    runs = pay_until_all_paid(within)
    after = provider_summary()
    return {
        "at_kill": progress,
        "runs": runs,
        "charged": after["charged"] - before["charged"],
        "chargedTwice": sorted(set(after["chargedTwice"]) - set(before["chargedTwice"])),
    }


# Probe pods, which the NetworkPolicy proofs connect from.

# What kube-router's firewall does to a connection no policy admits: it rejects it (ICMP port
# unreachable), so the client sees a refusal at once. A DNS failure (gaierror) or a timeout is
# not a "blocked" here: every probe first resolves and reaches an allowed target.
REFUSED = "blocked ConnectionRefusedError"
KUBE_DNS = ("kube-dns.kube-system.svc.cluster.local", 53)

CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=4).close()\n"
    "    print('connected')\n"
    "except OSError as error:\n"
    "    print('blocked', type(error).__name__)\n"
)


def invoice_app_image() -> str:
    deployment = json.loads(
        kubectl("get", "deployment", "invoice-app", "-n", "invoices", "-o", "json")
    )
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def restricted_pod(name: str, namespace: str, labels: dict | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name}},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "main",
                    "image": invoice_app_image(),
                    "imagePullPolicy": "IfNotPresent",
                    # The image is distroless: Python is its only program.
                    "command": ["python3", "-c", "import time; time.sleep(3600)"],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def egress_open_to_all(name: str, namespace: str) -> dict:
    """A NetworkPolicy letting the pods labelled app=`name` send anywhere: a probe with it is
    not stopped by its own namespace's default-deny, only by what guards the target."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "podSelector": {"matchLabels": {"app": name}},
            "policyTypes": ["Egress"],
            "egress": [{}],
        },
    }


def connect_from(namespace: str, pod: str, target: tuple[str, int]) -> str:
    return kubectl(
        "exec", "-n", namespace, pod, "--", "python3", "-c", CONNECT, target[0], str(target[1])
    ).strip()


# Nodes. The local cluster's first node is this host, control plane included; with
# local_cluster_nodes > 1 its workers are `<that name>-workerI`, each a Docker container of
# that same name.
CONTROL_PLANE = "invoicing-local"
WORKER_PREFIX = f"{CONTROL_PLANE}-worker"
# How many Ready nodes the cluster is meant to have (the three-node scenario says 3). A proof
# needing more nodes than a cluster has skips there, unless this promises them: then it fails,
# so that a missing node never passes as a skip.
EXPECT_NODES = int(os.environ.get("E2E_EXPECT_NODES") or 0)


def ready_nodes() -> list[str]:
    listed = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
    return sorted(node["metadata"]["name"] for node in listed if ready(node))


def require_nodes(count: int) -> list[str]:
    """The Ready nodes, when there are at least `count`; otherwise a skip, or a failure when
    E2E_EXPECT_NODES promises more nodes than are Ready."""
    nodes = ready_nodes()
    if len(nodes) < EXPECT_NODES:
        pytest.fail(f"E2E_EXPECT_NODES={EXPECT_NODES}, but {len(nodes)} nodes are Ready: {nodes}")
    if len(nodes) < count:
        pytest.skip(f"needs a multi-node cluster: {count} nodes ({len(nodes)} Ready)")
    return nodes


def node_ready(name: str) -> bool:
    return ready(json.loads(kubectl("get", "node", name, "-o", "json")))


def placement(namespace: str, app: str) -> dict[str, str]:
    """Each Ready pod of `app` (none that is being deleted), and the node it runs on."""
    return {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods(namespace, app) if ready(p)}


def wanted_replicas(namespace: str, app: str) -> int:
    deployment = json.loads(kubectl("get", "deployment", app, "-n", namespace, "-o", "json"))
    return deployment["spec"]["replicas"]


def settled_placement(namespace: str, app: str) -> dict[str, str]:
    """`placement` once the Deployment has rolled out and each replica it wants is Ready."""
    wait_rolled_out(namespace, f"deployment/{app}")
    wanted = wanted_replicas(namespace, app)
    wait_until(
        lambda: len(placement(namespace, app)) == wanted,
        180,
        f"{wanted} Ready pods of {app}",
        interval=1,
    )
    return placement(namespace, app)


def pods_per_node(where: dict[str, str]) -> dict[str, int]:
    """How many of the pods in `where` each Ready node runs (0 for a node with none)."""
    return {node: list(where.values()).count(node) for node in ready_nodes()}


def spread(where: dict[str, str]) -> bool:
    """The pods spread over the Ready nodes as their topologySpreadConstraint asks (maxSkew 1
    on kubernetes.io/hostname): three pods on three nodes, one each."""
    counts = pods_per_node(where).values()
    return max(counts) - min(counts) <= 1


def rebalance(namespace: str, app: str, attempts: int = 4) -> None:
    """Spreads `app`'s pods again where a disruption left them crowded: deletes one on the
    node with the most, and the scheduler places its replacement where the spread constraint
    points, on a node with the fewest."""
    for _ in range(attempts):
        where = settled_placement(namespace, app)
        if spread(where):
            return
        counts = pods_per_node(where)
        crowded = next(pod for pod, node in where.items() if counts[node] == max(counts.values()))
        kubectl("delete", "pod", crowded, "-n", namespace, "--wait=false")
    where = settled_placement(namespace, app)
    assert spread(where), f"{app} is still crowded after {attempts} moves: {where}"


def restore_spread() -> None:
    """Both services back on their usual placement after a proof moved their pods: a rollout
    restart of each, so that its pods start on the nodes as they are now, then `rebalance`,
    since the old ReplicaSet's pods count in the spread while the new ones are placed (which
    can leave two new pods on one node)."""
    for namespace, app in SERVICES:
        kubectl("rollout", "restart", f"deployment/{app}", "-n", namespace)
    for namespace, app in SERVICES:
        rebalance(namespace, app)


@pytest.fixture(scope="session", autouse=True)
def deployed() -> None:
    """The platform must already be deployed and answering; this tier does not deploy it."""
    reply = public("GET", "/invoices?limit=1", timeout=30)
    assert reply.status == 200, f"the platform does not answer through the Ingress: {reply}"
