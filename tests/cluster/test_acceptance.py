"""Acceptance checks of the local cluster (issue 3), run against the real cluster."""

import json
import subprocess
import urllib.request
import uuid

import pytest

from tests.cluster.conftest import (
    apply,
    ctr,
    exec_in,
    kubectl,
    pod,
    wait_for,
    wait_pod_ready,
    web_server,
)

pytestmark = pytest.mark.cluster

NODE = "invoicing-local"


# The first test pays for a cold bring-up when the cluster is not up yet (~12 min on 2 cores).
@pytest.mark.timeout(3600)
def test_node_is_ready(cluster: str) -> None:
    node = json.loads(kubectl("get", "node", NODE, "-o", "json"))
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    assert ready == "True"
    assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.32.")
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://1.6")


def test_deployment_of_locally_built_image_becomes_ready(test_image: str, namespaces) -> None:
    ns = namespaces("deploy")
    apply(*web_server(ns, "web", test_image, replicas=2))
    kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=120s", timeout=130)
    deployment = json.loads(kubectl("get", "deployment", "web", "-n", ns, "-o", "json"))
    assert deployment["status"]["readyReplicas"] == 2


def test_service_resolves_by_dns_from_another_pod_and_answers_on_its_cluster_ip(
    test_image: str, namespaces
) -> None:
    ns = namespaces("dns")
    apply(
        *web_server(ns, "web", test_image, text="dns-and-clusterip-ok"),
        pod(ns, "client", test_image, ["sleep", "3600"]),
    )
    kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=120s", timeout=130)
    wait_pod_ready(ns, "client")
    cluster_ip = _cluster_ip(ns)
    fqdn = f"web.{ns}.svc.cluster.local"

    # The name resolves to the ClusterIP, and the ClusterIP answers (kube-proxy may take a
    # moment to program a brand-new Service).
    resolves = lambda: cluster_ip in exec_in(ns, "client", "nslookup", fqdn).stdout  # noqa: E731
    answers = lambda: "dns-and-clusterip-ok" in http_get(ns, "client", cluster_ip)  # noqa: E731
    wait_for(resolves, 30, f"{fqdn} to resolve to {cluster_ip}")
    wait_for(answers, 30, f"{cluster_ip}:8080 to answer")


def test_ingress_answers_on_loopback_with_a_host_header(test_image: str, namespaces) -> None:
    ns = namespaces("ingress")
    host = f"{ns}.invoicing.test"
    apply(
        *web_server(ns, "web", test_image, text="through-the-ingress"),
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {  # no ingressClassName: the default IngressClass must pick it up
                "rules": [
                    {
                        "host": host,
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {
                                        "service": {"name": "web", "port": {"number": 8080}}
                                    },
                                }
                            ]
                        },
                    }
                ],
            },
        },
    )
    kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=120s", timeout=130)
    ingress = json.loads(kubectl("get", "ingress", "web", "-n", ns, "-o", "json"))
    assert ingress["spec"].get("ingressClassName") == "traefik"

    def answers() -> bool:
        request = urllib.request.Request("http://127.0.0.1:80/index.html", headers={"Host": host})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status == 200 and b"through-the-ingress" in response.read()
        except OSError:
            return False

    wait_for(answers, 60, f"http://127.0.0.1/ with Host: {host}")


def _cluster_ip(ns: str, service: str = "web") -> str:
    return kubectl("get", "service", service, "-n", ns, "-o", "jsonpath={.spec.clusterIP}")


def http_get(ns: str, client: str, address: str, port: int = 8080) -> str:
    """GET /index.html from inside a pod. busybox nc, because the static busybox's wget
    crashes looking up the `http` service without glibc's NSS modules in the image."""
    request = "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n'"
    result = exec_in(ns, client, "sh", "-c", f"{request} | nc -w 3 {address} {port}")
    return result.stdout if result.returncode == 0 else ""


def _connects(ns: str, client: str, address: str) -> bool:
    return "200 OK" in http_get(ns, client, address)


def test_network_policy_default_deny_blocks_other_namespace_but_allows_the_allowed_pod(
    test_image: str, namespaces
) -> None:
    server_ns = namespaces("np-server")
    allowed_ns = namespaces("np-allowed")
    denied_ns = namespaces("np-denied")
    apply(
        *web_server(server_ns, "web", test_image, text="np-ok"),
        pod(server_ns, "prober", test_image, ["sleep", "3600"]),
        pod(
            allowed_ns,
            "client",
            test_image,
            ["sleep", "3600"],
            labels={"app": "client", "role": "allowed"},
        ),
        pod(
            denied_ns,
            "client",
            test_image,
            ["sleep", "3600"],
            labels={"app": "client", "role": "allowed"},
        ),
        *web_server(allowed_ns, "web", test_image, text="outside-ok"),
    )
    for ns in (server_ns, allowed_ns):
        kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=120s", timeout=130)
    wait_pod_ready(server_ns, "prober")
    wait_pod_ready(allowed_ns, "client")
    wait_pod_ready(denied_ns, "client")
    target = _cluster_ip(server_ns)
    outside = _cluster_ip(allowed_ns)

    # Without policy, everything connects: any failure below is the policy's doing.
    wait_for(
        lambda: _connects(denied_ns, "client", target),
        30,
        "the denied client to connect before policy",
    )
    assert _connects(allowed_ns, "client", target)
    assert _connects(server_ns, "prober", outside)

    apply(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": server_ns},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-client", "namespace": server_ns},
            "spec": {
                "podSelector": {"matchLabels": {"app": "web"}},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": allowed_ns}
                                },
                                "podSelector": {"matchLabels": {"role": "allowed"}},
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": "http"}],
                    }
                ],
            },
        },
    )
    # Ingress: the pod from another namespace is blocked, the allowed one still connects.
    wait_for(
        lambda: not _connects(denied_ns, "client", target),
        30,
        "the policy to block the denied client",
    )
    assert _connects(allowed_ns, "client", target), "the allowed client lost its connection"
    assert not _connects(denied_ns, "client", target)
    # Egress: default-deny also stops the server namespace's pods from reaching out.
    assert not _connects(server_ns, "prober", outside), "egress was not denied"

    # Deleting the policies opens the path again (the enforcer follows changes both ways).
    kubectl("delete", "networkpolicy", "--all", "-n", server_ns)
    wait_for(
        lambda: _connects(denied_ns, "client", target), 30, "the path to reopen without policy"
    )


def test_privileged_pod_is_rejected_in_a_restricted_namespace(test_image: str, namespaces) -> None:
    ns = namespaces("psa", labels={"pod-security.kubernetes.io/enforce": "restricted"})
    privileged = pod(ns, "privileged", test_image, ["sleep", "60"])
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    rejected = subprocess.run(
        [
            "/usr/local/bin/kubectl",
            "--kubeconfig",
            "/etc/invoicing-platform/admin.kubeconfig",
            "apply",
            "-f",
            "-",
        ],
        input=json.dumps(privileged),
        capture_output=True,
        text=True,
        check=False,
    )
    assert rejected.returncode != 0
    assert "violates PodSecurity" in rejected.stderr
    assert "privileged" in rejected.stderr
    # The same pod made compliant is admitted, so the rejection is the policy's, not an error.
    apply(pod(ns, "compliant", test_image, ["sleep", "60"]))
    assert kubectl("get", "pod", "compliant", "-n", ns, "-o", "name").strip() == "pod/compliant"


def test_run_as_non_root_refuses_an_image_that_runs_as_root_until_a_numeric_uid_is_set(
    test_image: str, namespaces
) -> None:
    """The original exercise's Part 1: the test image has no USER, so it runs as root. With
    `runAsNonRoot` and no UID the kubelet refuses to start it; the same image with a numeric
    `runAsUser` starts. The service images avoid this with `USER 10001:10001` (numeric)."""
    ns = namespaces("nonroot")
    as_root = pod(ns, "as-root", test_image, ["sleep", "60"])
    del as_root["spec"]["containers"][0]["securityContext"]["runAsUser"]
    apply(as_root, pod(ns, "numeric-uid", test_image, ["sleep", "60"]))

    def refusal() -> str:
        listed = json.loads(kubectl("get", "pod", "as-root", "-n", ns, "-o", "json"))
        waiting = listed["status"].get("containerStatuses", [{}])[0].get("state", {})
        return json.dumps(waiting.get("waiting", {}))

    wait_for(lambda: "CreateContainerConfigError" in refusal(), 60, "the kubelet's refusal")
    assert "image will run as root" in refusal()
    wait_pod_ready(ns, "numeric-uid")


def test_auth_can_i_follows_rbac_for_a_user_bound_to_one_namespace(namespaces) -> None:
    team_ns = namespaces("rbac-team")
    other_ns = namespaces("rbac-other")
    user = f"jane-{uuid.uuid4().hex[:6]}"
    apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "jane-edit", "namespace": team_ns},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "edit",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }
    )

    def can_i(*args: str) -> str:
        return kubectl("auth", "can-i", *args, "--as", user, check=False).strip().splitlines()[0]

    wait_for(
        lambda: can_i("create", "deployments", "-n", team_ns) == "yes",
        30,
        "the RoleBinding to apply",
    )
    assert can_i("delete", "pods", "-n", team_ns) == "yes"
    assert can_i("create", "deployments", "-n", other_ns) == "no"
    assert can_i("get", "secrets", "-n", other_ns) == "no"
    assert can_i("create", "clusterrolebindings") == "no"
    assert can_i("create", "rolebindings", "-n", team_ns) == "no"


def test_pvc_binds_and_its_data_survives_a_pod_restart(test_image: str, namespaces) -> None:
    ns = namespaces("pvc")
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": ns},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}},
    }
    marker = uuid.uuid4().hex

    def writer_pod(name: str, command: str) -> dict:
        spec = pod(ns, name, test_image, ["sh", "-c", command])
        spec["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        spec["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
        return spec

    apply(claim, writer_pod("writer", f"echo {marker} > /data/marker && sleep 3600"))
    wait_pod_ready(ns, "writer")
    pvc = json.loads(kubectl("get", "pvc", "data", "-n", ns, "-o", "json"))
    assert pvc["status"]["phase"] == "Bound"
    assert pvc["spec"]["storageClassName"] == "local-path"

    kubectl("delete", "pod", "writer", "-n", ns, "--wait=true", timeout=120)
    apply(writer_pod("reader", "sleep 3600"))
    wait_pod_ready(ns, "reader")
    read = exec_in(ns, "reader", "cat", "/data/marker")
    assert read.stdout.strip() == marker


def test_image_pushed_to_the_local_registry_is_pulled_by_the_cluster(
    test_image: str, namespaces
) -> None:
    """The prod-like path: push to 127.0.0.1:5000, then a pod pulls it over plain HTTP."""
    ref = f"127.0.0.1:5000/lc-test/testbox:{uuid.uuid4().hex[:8]}"
    ctr("images", "tag", test_image, ref)
    ctr("images", "push", "--plain-http", ref)
    ctr("images", "rm", ref)
    ns = namespaces("registry")
    spec = pod(ns, "pulled", ref, ["sleep", "3600"])
    spec["spec"]["containers"][0]["imagePullPolicy"] = "Always"
    apply(spec)
    wait_pod_ready(ns, "pulled")
    events = kubectl("get", "events", "-n", ns, "-o", "json")
    assert any(e.get("reason") == "Pulled" for e in json.loads(events)["items"])
