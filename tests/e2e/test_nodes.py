"""The platform across nodes: each service's pods on distinct nodes, a drain of two nodes under
traffic that the PodDisruptionBudgets pace, a node lost in the middle of a pay run, and the
NetworkPolicies holding between pods on different nodes.

They need a cluster of three nodes (`-e local_cluster_nodes=3`) and skip on one, unless
E2E_EXPECT_NODES says the cluster has more nodes than are Ready: then they fail. They fail when
the pods share a node (no spread), when a drain fails a request or no budget holds an eviction
back, when a lost node's pods are not replaced or an invoice is not charged exactly once, and
when a policy is not enforced (or too tight) for traffic from another node. The spread proof
runs first: the drain and the node loss move pods, and spread them again before they end.
"""

import functools
import json
import re
import subprocess
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.cluster.conftest import apply, kubectl, kubectl_run, make_namespace, wait_pod_ready
from tests.e2e.conftest import (
    KUBE_DNS,
    REFUSED,
    SERVICES,
    WORKER_PREFIX,
    Traffic,
    all_paid,
    connect_from,
    egress_open_to_all,
    ingress_traffic,
    invoice_app_image,
    kill_mid_run,
    node_ready,
    placement,
    public,
    rebalance,
    require_nodes,
    restore_spread,
    restricted_pod,
    settled_placement,
    spread,
    wanted_replicas,
)
from tests.support import wait_until

DATABASES = (("invoices", "invoices-db-0"), ("payments", "payments-db-0"))


@pytest.fixture
def nodes() -> list[str]:
    """The Ready nodes: three at least, or the test skips (fails under E2E_EXPECT_NODES)."""
    return require_nodes(3)


def workers(nodes: list[str]) -> list[str]:
    return [node for node in nodes if node.startswith(WORKER_PREFIX)]


def spread_first() -> None:
    """Each service spread over the nodes before a proof moves pods, whatever an earlier
    disruption left."""
    for namespace, app in SERVICES:
        rebalance(namespace, app)


def test_each_service_runs_its_three_pods_on_three_different_nodes(nodes: list[str]) -> None:
    for namespace, app in SERVICES:
        where = settled_placement(namespace, app)
        print(f"spread {app}: {len(where)} Ready pods on {len(set(where.values()))} nodes")
        assert len(where) >= 3, f"{app}: {where}"
        assert spread(where), f"{app}'s Ready pods crowd a node: {where}"


# The drain: every pod but the DaemonSets' leaves the node, emptyDir data included.
DRAIN = ("--ignore-daemonsets", "--delete-emptydir-data", "--timeout=240s")
BUDGET_REFUSAL = re.compile(
    r'error when evicting pods/"(?P<pod>[^"]+)" -n "(?P<namespace>[^"]+)"'
    r".*would violate the pod's disruption budget"
)


def unmanaged_pods_on(nodes: list[str]) -> list[str]:
    """Unfinished pods on `nodes` that no controller owns, which a drain refuses to delete
    (a probe an earlier proof left terminating, say)."""
    found = []
    for node in nodes:
        listed = kubectl(
            "get", "pods", "-A", "--field-selector", f"spec.nodeName={node}", "-o", "json"
        )
        for pod in json.loads(listed)["items"]:
            owners = pod["metadata"].get("ownerReferences", [])
            finished = pod["status"].get("phase") in ("Succeeded", "Failed")
            if not finished and not any(owner.get("controller") for owner in owners):
                found.append(f"{pod['metadata']['namespace']}/{pod['metadata']['name']}")
    return found


def drain_at_once(nodes: list[str]) -> list[subprocess.CompletedProcess]:
    """One `kubectl drain` per node, started together. A single `kubectl drain A B` cordons
    both, then drains A and only then B (kubectl's RunDrain loops over the nodes), so with
    one pod of a Deployment per node it never asks for two evictions of one Deployment at
    once, and a budget would rarely have to refuse one."""
    with ThreadPoolExecutor(len(nodes)) as pool:
        return list(pool.map(lambda node: kubectl_run("drain", node, *DRAIN, timeout=260), nodes))


def refusals(output: str) -> Counter:
    """How many evictions a PodDisruptionBudget refused, by namespace (kubectl prints each
    refusal on stderr, then retries after 5 s)."""
    return Counter(match["namespace"] for match in BUDGET_REFUSAL.finditer(output))


def drain_under_traffic(drained: list[str]) -> tuple[Traffic, list, dict[str, dict]]:
    """Cordons `drained`, then drains them at once while traffic runs through the Ingress,
    from before the drains start until after every pod has settled elsewhere. Returns the
    traffic, the drains' results and where each service's pods ended."""
    kubectl("cordon", *drained)  # so that no pod evicted from one lands on the other
    with ingress_traffic(bound=600) as traffic:
        traffic.answered(20)
        results = drain_at_once(drained)
        moved = {app: settled_placement(namespace, app) for namespace, app in SERVICES}
        traffic.answered(len(traffic.outcomes) + 20)
    return traffic, results, moved


@pytest.mark.timeout(1800)
def test_draining_two_nodes_under_traffic_fails_no_request_and_each_budget_holds_one_back(
    nodes: list[str],
) -> None:
    drained = workers(nodes)[:2]
    assert len(drained) == 2, f"two workers to drain among {nodes}"
    spread_first()
    for namespace, app in SERVICES:
        hosts = set(placement(namespace, app).values())
        assert set(drained) <= hosts, f"{app} has no pod to evict on one of {drained}: {hosts}"
    wait_until(lambda: not unmanaged_pods_on(drained), 120, "pods no controller owns to go")
    try:
        traffic, results, moved = drain_under_traffic(drained)
    finally:
        kubectl("uncordon", *drained)
        restore_spread()
    output = "".join(result.stdout + result.stderr for result in results)
    refused = refusals(output)
    print(f"drain requests: {len(traffic.outcomes)}")
    print(f"drain failed requests: {len(traffic.failed)}")
    for namespace, app in SERVICES:
        print(f"drain evictions of {app} refused by its budget: {refused[namespace]}")
    assert all(result.returncode == 0 for result in results), output[-4000:]
    for namespace, app in SERVICES:
        assert not set(moved[app].values()) & set(drained), f"{app} still on {drained}: {moved}"
        assert refused[namespace] >= 1, f"{app}'s PodDisruptionBudget held back no eviction"
    assert len(traffic.outcomes) >= 50, "too few requests to show anything"
    assert traffic.failed == [], f"{len(traffic.failed)} requests failed: {Counter(traffic.failed)}"


# A pay run long enough to outlast the node's stop (`docker stop` gives the worker's
# supervisord up to 10 s before it kills the rest), cut at 10% of its charges.
NODE_LOSS_INVOICES = 20_000


def docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=True, timeout=120
    ).stdout


def database_pods() -> dict[str, tuple[str, str, str, int]]:
    """Each database pod's uid, node, phase and container restarts."""
    state = {}
    for namespace, name in DATABASES:
        pod = json.loads(kubectl("get", "pod", name, "-n", namespace, "-o", "json"))
        restarts = sum(c["restartCount"] for c in pod["status"].get("containerStatuses", []))
        metadata, spec, status = pod["metadata"], pod["spec"], pod["status"]
        state[name] = (metadata["uid"], spec["nodeName"], status["phase"], restarts)
    return state


def node_to_lose(nodes: list[str]) -> str:
    """A worker that neither database runs on: their volumes are the node's own disk, so a
    database lost with its node would stop every pay run, which is another proof's matter."""
    holding = {node for _, node, _, _ in database_pods().values()}
    candidates = [node for node in workers(nodes) if node not in holding]
    assert candidates, f"every worker holds a database: {database_pods()}"
    return candidates[0]


def pods_on(node: str) -> dict[str, list[str]]:
    return {
        app: [pod for pod, at in placement(namespace, app).items() if at == node]
        for namespace, app in SERVICES
    }


def replaced(node: str, lost: dict[str, list[str]]) -> bool:
    """Each service has all its Ready pods again, none on `node` and none of those lost there."""
    for namespace, app in SERVICES:
        where = placement(namespace, app)
        if len(where) < wanted_replicas(namespace, app):
            return False
        if node in where.values() or set(lost[app]) & set(where):
            return False
    return True


def unpaid() -> int:
    return sum(not invoice["IsPaid"] for invoice in public("GET", "/invoices").body)


def lose_node(node: str, lost: dict[str, list[str]], seen: dict) -> Callable[[str], None]:
    """The fault for `kill_mid_run`: the node's container stopped, which takes its kubelet and
    its pods with it, as a machine that loses power would. Its check, after the run: the
    container is stopped, the run got no answer, the node went NotReady, the pods lost with it
    were replaced on other nodes, and the run had left invoices unpaid (it was cut, not
    finished)."""
    docker("stop", node)

    def check(answer: str) -> None:
        running = docker("inspect", "--format", "{{.State.Running}}", node).strip()
        assert running == "false", f"{node}'s container still runs"
        assert answer.strip() != "200", f"the pay run on {node} answered: it outlived its node"
        wait_until(lambda: not node_ready(node), 120, f"{node} to report NotReady", interval=1)
        wait_until(
            lambda: replaced(node, lost),
            240,
            f"the pods lost with {node} to be replaced",
            interval=2,
        )
        seen["unpaid"] = unpaid()
        assert seen["unpaid"] > 0, f"the pay run had paid everything before {node} was lost"

    return check


def bring_back(node: str) -> None:
    docker("start", node)
    wait_until(lambda: node_ready(node), 300, f"{node} to be Ready again", interval=2)


@pytest.mark.timeout(1800)
def test_a_node_lost_while_paying_leaves_every_invoice_charged_exactly_once(
    nodes: list[str],
) -> None:
    spread_first()
    node = node_to_lose(nodes)
    lost = pods_on(node)
    assert all(lost.values()), f"a pod of each service on {node}: {lost}"
    databases, seen = database_pods(), {}
    try:
        fault = functools.partial(lose_node, node, lost, seen)
        # Leases of the cut run lapse about two minutes after it claimed them.
        figures = kill_mid_run(fault, lost["invoice-app"][0], NODE_LOSS_INVOICES, within=420)
        databases_after = database_pods()
    finally:
        bring_back(node)
        restore_spread()
    print(
        f"node loss: {figures['at_kill']} of {NODE_LOSS_INVOICES} charged when {node} was"
        f" stopped, {seen['unpaid']} left unpaid; {figures['charged']} charges for"
        f" {NODE_LOSS_INVOICES} new invoices, {figures['runs']} more pay runs"
    )
    for name, (_, at, phase, restarts) in databases_after.items():
        print(f"node loss {name} restarts: {restarts} ({phase} on {at})")
    assert all_paid()
    assert figures["chargedTwice"] == [], "charged twice"
    assert figures["charged"] == NODE_LOSS_INVOICES, "every invoice charged exactly once"
    assert databases_after == databases, "a database pod was restarted or moved"


def pinned(pod: dict, node: str) -> dict:
    """`pod`, scheduled on `node` only, and quick to go when deleted."""
    pod["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node}
    pod["spec"]["terminationGracePeriodSeconds"] = 1
    return pod


def pod_address(namespace: str, name: str) -> tuple[str, str]:
    """A pod's IP and its node."""
    pod = json.loads(kubectl("get", "pod", name, "-n", namespace, "-o", "json"))
    return pod["status"]["podIP"], pod["spec"]["nodeName"]


def probe_node_and_targets(nodes: list[str]) -> tuple[str, dict[str, tuple[str, str, int]]]:
    """A node for the probes, and a payment-provider pod and the invoices database, each on
    another node: {target: (pod IP, node, port)}."""
    database = pod_address("invoices", "invoices-db-0")
    providers = [pod_address("payments", pod) for pod in placement("payments", "payment-provider")]
    for node in nodes:
        elsewhere = [provider for provider in providers if provider[1] != node]
        if database[1] != node and elsewhere:
            return node, {
                "payment-provider": (*elsewhere[0], 8082),
                "invoices-db": (*database, 5432),
            }
    raise AssertionError(f"no node away from the database and a provider: {providers}")


def test_network_policies_hold_between_pods_on_different_nodes(nodes: list[str]) -> None:
    """Traffic between nodes crosses kube-router's routes and the target node's firewall: a
    probe wearing invoice-app's labels reaches a payment-provider pod and the database on
    other nodes, at their pod IPs (not through a Service, so that it is known which node each
    connection ends on), while a probe beside it without those labels, with an egress allow
    of its own so that only the targets' rules can stop it, is refused by both."""
    node, targets = probe_node_and_targets(nodes)
    name = f"cross-node-{uuid.uuid4().hex[:6]}"
    client = f"{name}-client"
    # The policies select the name label; an instance of its own keeps the probe out of
    # invoice-app's Service and PodDisruptionBudget, as the billing CronJob's pods are.
    labels = {"app.kubernetes.io/name": "invoice-app", "app.kubernetes.io/instance": name}
    apply(
        egress_open_to_all(name, "invoices"),
        pinned(restricted_pod(client, "invoices", labels=labels), node),
        pinned(restricted_pod(name, "invoices", labels={"app": name}), node),
    )
    try:
        for probe in (client, name):
            wait_pod_ready("invoices", probe)
            assert pod_address("invoices", probe)[1] == node, f"{probe} is not on {node}"
        print(f"netpol across nodes: probes on {node}, targets {targets}")
        for target, (ip, at, port) in targets.items():
            assert at != node, f"{target} is on the probes' node {node}"
            reached = connect_from("invoices", client, (ip, port))
            assert reached == "connected", (
                f"the positive control: invoice-app's labels on {node}, to {target} on {at}"
            )
        assert connect_from("invoices", name, KUBE_DNS) == "connected", "the impostor's control"
        for target, (ip, at, port) in targets.items():
            refused = connect_from("invoices", name, (ip, port))
            assert refused == REFUSED, f"no labels, on {node}, to {target} on {at}"
    finally:
        kubectl("delete", "pod", client, name, "-n", "invoices", "--wait=false")
        kubectl("delete", "networkpolicy", name, "-n", "invoices", "--wait=false")


# -- every node pulls from the local registry ---------------------------------------------------

# Images name the registry by the control-plane node's loopback address; a worker's containerd
# maps that name to the registry on the node network (roles/local_cluster_node's containerd.toml).
REGISTRY_PROBE = "127.0.0.1:5000/invoicing-platform-e2e/registry-probe:1"


def pull_pod(name: str, namespace: str, node: str) -> dict:
    """A pod on `node` whose image must come from the registry (pulled every time) and which
    exits 0 once it runs."""
    pod = pinned(restricted_pod(name, namespace), node)
    container = pod["spec"]["containers"][0]
    container.update(
        image=REGISTRY_PROBE, imagePullPolicy="Always", command=["python3", "-c", "pass"]
    )
    pod["spec"]["restartPolicy"] = "Never"
    return pod


def pod_phase(namespace: str, name: str) -> str:
    """The pod's phase, or the reason its image cannot be pulled (which is final here)."""
    pod = json.loads(kubectl("get", "pod", name, "-n", namespace, "-o", "json"))
    for container in pod["status"].get("containerStatuses", []):
        reason = container.get("state", {}).get("waiting", {}).get("reason", "")
        if reason in ("ErrImagePull", "ImagePullBackOff"):
            return reason
    return pod["status"].get("phase", "")


def test_every_node_pulls_from_the_local_registry_by_its_loopback_name(nodes: list[str]) -> None:
    """The positive control is the control-plane node, where 127.0.0.1:5000 is the registry
    itself; a worker pulls the same name only through its containerd's mirror."""
    docker("tag", invoice_app_image(), REGISTRY_PROBE)
    docker("push", "-q", REGISTRY_PROBE)
    namespace = make_namespace("registry", {"pod-security.kubernetes.io/enforce": "restricted"})
    try:
        names = {node: f"pull-{i}" for i, node in enumerate(nodes)}
        apply(*(pull_pod(name, namespace, node) for node, name in names.items()))
        wait_until(
            lambda: all(
                pod_phase(namespace, n) not in ("", "Pending", "Running") for n in names.values()
            ),
            180,
            "every node's pull pod to finish",
            interval=2,
        )
        phases = {node: pod_phase(namespace, name) for node, name in names.items()}
        pulled = sum(phase == "Succeeded" for phase in phases.values())
        print(f"registry pulls: {pulled} of {len(phases)} nodes")
        assert set(phases.values()) == {"Succeeded"}, phases
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false")
