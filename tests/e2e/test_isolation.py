"""Reachability, pod security and RBAC, checked from outside as a user would."""

import json
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.cluster.conftest import apply, kubectl, wait_pod_ready
from tests.e2e.conftest import (
    CONNECT,
    KUBE_DNS,
    NAMESPACES,
    REFUSED,
    api_token,
    connect_from,
    egress_open_to_all,
    in_invoice_app,
    in_pod_of,
    public,
    restricted_pod,
)

PROVIDER = ("payment-provider.payments.svc.cluster.local", 8082)
DATABASE = ("invoices-db.invoices.svc.cluster.local", 5432)
LEDGER = ("payments-db.payments.svc.cluster.local", 5432)


@pytest.fixture
def outsider() -> Iterator[tuple[str, str]]:
    """A pod in a third namespace this test creates, and removes afterwards."""
    namespace = f"e2e-outsider-{uuid.uuid4().hex[:6]}"
    apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    apply(restricted_pod("outsider", namespace))
    kubectl(
        "wait",
        "--for=condition=Ready",
        "pod/outsider",
        "-n",
        namespace,
        "--timeout=120s",
        timeout=130,
    )
    yield namespace, "outsider"
    kubectl("delete", "namespace", namespace, "--wait=false")


def test_invoice_app_answers_through_the_ingress_on_loopback() -> None:
    reply = public("GET", "/invoices")
    assert reply.status == 200
    assert {"I1", "I2", "I3"} <= {i["InvoiceId"] for i in reply.body}


def invoice_app_pod_ip() -> str:
    listed = json.loads(
        kubectl(
            "get",
            "pods",
            "-n",
            "invoices",
            "-l",
            "app.kubernetes.io/name=invoice-app",
            "-o",
            "json",
        )
    )["items"]
    return next(p["status"]["podIP"] for p in listed if p["status"].get("podIP"))


def test_invoice_app_is_reached_through_the_ingress_and_never_directly(
    outsider: tuple[str, str],
) -> None:
    """The Ingress controller runs as pods (Traefik in its own namespace), and invoice-app's
    policy admits only those pods: a pod elsewhere is refused at invoice-app's own pod IP,
    while the same request through the Ingress on 127.0.0.1 is answered."""
    namespace, pod = outsider
    # Positive control: the outsider's own egress is open, it reaches the cluster DNS pods.
    assert connect_from(namespace, pod, KUBE_DNS) == "connected"
    direct = connect_from(namespace, pod, (invoice_app_pod_ip(), 8081))
    # kube-router's firewall rejects what no policy admits (ICMP port unreachable): the
    # connection is refused at once, not left to time out.
    assert direct == REFUSED, direct
    assert public("GET", "/invoices?limit=1").status == 200


DNS_LOOKUP = (
    "import socket, sys\n"
    "try:\n"
    "    print('resolved', socket.gethostbyname(sys.argv[1]))\n"
    "except OSError as error:\n"
    "    print('unresolved', type(error).__name__)\n"
)


def test_names_resolve_only_where_the_platforms_dns_egress_policy_allows() -> None:
    """The platform's allow-dns-egress policy names the kube-dns pods in kube-system. In a
    namespace that denies all egress, a pod cannot resolve a name until that same policy is
    applied there; then it can."""
    namespace = f"e2e-dns-{uuid.uuid4().hex[:6]}"
    apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        apply(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "default-deny", "namespace": namespace},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            }
        )
        prober = restricted_pod("prober", namespace)
        # Fail fast: one try of one second per lookup instead of the resolver's 5 s x 2.
        prober["spec"]["dnsConfig"] = {
            "options": [{"name": "timeout", "value": "1"}, {"name": "attempts", "value": "1"}]
        }
        apply(prober)
        kubectl(
            "wait",
            "--for=condition=Ready",
            "pod/prober",
            "-n",
            namespace,
            "--timeout=120s",
            timeout=130,
        )
        name = "kubernetes.default.svc.cluster.local"

        def lookup() -> str:
            return kubectl(
                "exec", "-n", namespace, "prober", "--", "python3", "-c", DNS_LOOKUP, name
            ).strip()

        def settled(want: str) -> str:
            """The answer once it starts with `want`, or the last one after 30 s."""
            deadline = time.monotonic() + 30
            while not (answer := lookup()).startswith(want) and time.monotonic() < deadline:
                time.sleep(1)
            return answer

        # kube-router puts a new pod into its policies' sets a moment after the pod starts (seen
        # on a worker node: the first lookup resolved). The deny must then hold, and stay.
        assert settled("unresolved").startswith("unresolved"), "resolved with all egress denied"
        assert lookup().startswith("unresolved"), "resolved again with all egress denied"
        policy = json.loads(
            kubectl("get", "networkpolicy", "allow-dns-egress", "-n", "invoices", "-o", "json")
        )
        apply(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "allow-dns-egress", "namespace": namespace},
                "spec": policy["spec"],
            }
        )
        answer = settled("resolved")
        assert answer == "resolved 10.96.0.1", answer
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false")


def test_payment_provider_has_no_ingress_nodeport_or_loadbalancer() -> None:
    ingresses = json.loads(kubectl("get", "ingress", "-A", "-o", "json"))["items"]
    backends = {
        path["backend"]["service"]["name"]
        for ingress in ingresses
        for rule in ingress["spec"].get("rules", [])
        for path in rule.get("http", {}).get("paths", [])
    }
    assert "payment-provider" not in backends
    services = json.loads(kubectl("get", "services", "-n", "payments", "-o", "json"))["items"]
    assert {s["spec"]["type"] for s in services} == {"ClusterIP"}


@pytest.fixture
def bystander() -> Iterator[tuple[str, int]]:
    """A listener in `payments` that no allow policy selects: only the namespace's default-deny
    guards it. Returns its pod IP and port."""
    name = f"bystander-{uuid.uuid4().hex[:6]}"
    listener = restricted_pod(name, "payments")
    container = listener["spec"]["containers"][0]
    container["command"] = ["python3", "-m", "http.server", "8080", "--directory", "/tmp"]
    container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    # Its positive control: the kubelet's probe, which no NetworkPolicy filters, reaches it.
    container["readinessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    listener["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    apply(listener)
    try:
        wait_pod_ready("payments", name)
        ip = json.loads(kubectl("get", "pod", name, "-n", "payments", "-o", "json"))["status"]
        yield ip["podIP"], 8080
    finally:
        kubectl("delete", "pod", name, "-n", "payments", "--wait=false")


def test_only_invoice_app_reaches_payment_provider_and_its_database(
    outsider: tuple[str, str], bystander: tuple[str, int]
) -> None:
    namespace, pod = outsider
    # Positive controls: each allowed path works, so a refusal below is the policy's doing.
    for target in (PROVIDER, DATABASE):
        assert in_invoice_app("-c", CONNECT, *map(str, target)).strip() == "connected", target
    ledger_reach = in_pod_of("payments", "payment-provider", "-c", CONNECT, *map(str, LEDGER))
    assert ledger_reach.strip() == "connected"
    assert connect_from(namespace, pod, KUBE_DNS) == "connected", "the outsider's own control"
    for target in (PROVIDER, DATABASE, LEDGER):
        assert connect_from(namespace, pod, target) == REFUSED, target
    # Whatever else runs in `payments` is shut by its default-deny alone.
    assert connect_from(namespace, pod, bystander) == REFUSED, "the bystander in payments"


def test_a_pod_in_invoices_without_invoice_app_labels_is_blocked_by_the_providers_rule() -> None:
    """The impostor gets an egress allow of its own, so that `invoices`' default-deny cannot be
    what stops it: only payment-provider's ingress rule (invoice-app's pods, not the whole
    namespace) and the database's can."""
    name = f"impostor-{uuid.uuid4().hex[:6]}"
    egress = egress_open_to_all(name, "invoices")
    apply(egress, restricted_pod(name, "invoices", labels={"app": name}))
    try:
        wait_pod_ready("invoices", name)
        assert connect_from("invoices", name, KUBE_DNS) == "connected", "the impostor's control"
        assert connect_from("invoices", name, PROVIDER) == REFUSED
        assert connect_from("invoices", name, DATABASE) == REFUSED
    finally:
        kubectl("delete", "pod", name, "-n", "invoices", "--wait=false")
        kubectl("delete", "networkpolicy", name, "-n", "invoices", "--wait=false")


def test_a_pod_wearing_invoice_app_labels_in_another_namespace_is_blocked(
    outsider: tuple[str, str],
) -> None:
    """The reverse case: the right labels in the wrong namespace (its egress is open)."""
    namespace, _ = outsider
    labels = {"app.kubernetes.io/name": "invoice-app", "app.kubernetes.io/instance": "invoice-app"}
    apply(restricted_pod("lookalike", namespace, labels=labels))
    wait_pod_ready(namespace, "lookalike")
    assert connect_from(namespace, "lookalike", KUBE_DNS) == "connected"
    assert connect_from(namespace, "lookalike", PROVIDER) == REFUSED
    assert connect_from(namespace, "lookalike", DATABASE) == REFUSED


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize(
    ("kind", "tweak"),
    [
        (
            "privileged",
            lambda c, s: c["securityContext"].update(
                privileged=True, allowPrivilegeEscalation=True
            ),
        ),
        ("root", lambda c, s: s.update(runAsNonRoot=False, runAsUser=0)),
        (
            "added capability",
            lambda c, s: c["securityContext"]["capabilities"].update(add=["NET_ADMIN"]),
        ),
    ],
)
def test_pod_security_rejects_unsafe_pods(namespace: str, kind: str, tweak) -> None:
    pod = restricted_pod(f"unsafe-{uuid.uuid4().hex[:6]}", namespace)
    tweak(pod["spec"]["containers"][0], pod["spec"]["securityContext"])
    result = kubectl("apply", "--dry-run=server", "-f", "-", stdin=json.dumps(pod), check=False)
    assert "violates PodSecurity" in result, kind
    # The same pod without the tweak is admitted: the rejection is the policy's.
    compliant = restricted_pod(pod["metadata"]["name"], namespace)
    kubectl("apply", "--dry-run=server", "-f", "-", stdin=json.dumps(compliant))


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_every_running_pod_is_non_root_read_only_and_adds_no_capabilities(namespace: str) -> None:
    listed = json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json"))["items"]
    assert len(listed) >= 4
    for pod in listed:
        spec = pod["spec"]
        for container in spec["containers"]:
            context = {**spec.get("securityContext", {}), **container.get("securityContext", {})}
            name = f"{pod['metadata']['name']}/{container['name']}"
            assert context.get("runAsNonRoot") is True, name
            assert context.get("readOnlyRootFilesystem") is True, name
            assert not context.get("capabilities", {}).get("add"), name


def can_i(verb: str, resource: str, namespace: str | None, *identity: str) -> bool:
    where = ["-n", namespace] if namespace else []
    answer = kubectl("auth", "can-i", verb, resource, *where, *identity, check=False)
    return answer.strip().splitlines()[0] == "yes"


TEAMS = {
    "team-invoices": ("invoices", "payments"),
    "team-payments": ("payments", "invoices"),
}


@pytest.mark.parametrize("team", TEAMS)
def test_each_team_manages_only_its_own_namespace(team: str) -> None:
    own, other = TEAMS[team]
    who = ["--as", f"alice-of-{team}", "--as-group", team]
    assert can_i("create", "deployments", own, *who)
    assert can_i("delete", "pods", own, *who)
    assert can_i("get", "secrets", own, *who)
    assert not can_i("create", "deployments", other, *who)
    assert not can_i("get", "secrets", other, *who)
    assert not can_i("delete", "networkpolicies", own, *who), "isolation stays with the platform"
    assert not can_i("create", "rolebindings", own, *who)
    assert not can_i("create", "namespaces", None, *who)
    assert not can_i("get", "nodes", None, *who)
    assert not can_i("*", "*", None, *who)


@pytest.mark.parametrize(
    ("namespace", "other"), [("invoices", "payments"), ("payments", "invoices")]
)
def test_each_deployer_service_account_is_confined_to_its_namespace(
    namespace: str, other: str
) -> None:
    who = ["--as", f"system:serviceaccount:{namespace}:deployer"]
    assert can_i("patch", "deployments", namespace, *who)
    assert can_i("create", "networkpolicies", namespace, *who)
    assert not can_i("patch", "deployments", other, *who)
    assert not can_i("get", "secrets", other, *who)
    assert not can_i("create", "clusterrolebindings", None, *who)


def test_nobody_but_the_cluster_admins_is_bound_to_cluster_admin() -> None:
    bindings = json.loads(kubectl("get", "clusterrolebindings", "-o", "json"))["items"]
    subjects = {
        (s["kind"], s["name"])
        for b in bindings
        if b["roleRef"]["name"] == "cluster-admin"
        for s in b.get("subjects", [])
    }
    assert subjects <= {("Group", "system:masters")}, subjects


def test_the_pay_routes_need_the_api_token_wherever_the_platform_sets_one() -> None:
    """prod vaults an API token for invoice-app's pay routes; dev leaves them open for the
    original exercise's client. Either way the deployed behaviour matches the configuration."""
    for path in ("/invoices/pay", "/rest/v1/invoices/pay"):
        anonymous = public("POST", path, authorised=False)
        if api_token():
            assert anonymous.status == 401, (path, anonymous)
            assert isinstance(anonymous.body, dict), anonymous
            assert anonymous.body.get("error"), anonymous
            assert public("POST", path).status == 200, path
        else:
            assert anonymous.status == 200, (path, anonymous)


def test_metrics_are_served_on_their_own_port_and_not_through_the_ingress() -> None:
    reply = public("GET", "/metrics")
    assert reply.status == 404, reply
    # Positive control: the metrics are there, on the port the cluster reaches.
    scrape = (
        "import urllib.request;"
        "print(urllib.request.urlopen('http://127.0.0.1:9091/metrics', timeout=10).read().decode())"
    )
    assert "invoices_pending" in in_invoice_app("-c", scrape)
