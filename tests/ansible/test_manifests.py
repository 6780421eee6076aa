"""Every manifest dev and prod would apply, rendered by the real deploy playbook (render mode
contacts no cluster), validated against the Kubernetes schema, and compared across the two."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.ansible.conftest import PROD_VAULT, extra_vars, playbook
from tests.ansible.kubernetes_schema import KubernetesSchema, pinned_kubernetes_version

INVENTORIES = {"dev": ["-i", "inventories/dev"], "prod": ["-i", "inventories/prod", *PROD_VAULT]}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    manifests = {}
    for env, inventory in INVENTORIES.items():
        out = tmp_path_factory.mktemp(f"render-{env}")
        playbook(
            *inventory,
            "playbooks/deploy.yml",
            *extra_vars({"platform_render_dir": str(out)}),
            ANSIBLE_CONFIG="ansible.cfg",
        )
        manifests[env] = list(_documents(out))
    return manifests


def _documents(directory: Path) -> Iterator[dict]:
    for path in sorted(directory.iterdir()):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield document


def by_kind(documents: list[dict], kind: str) -> dict[str, dict]:
    return {
        f"{d['metadata'].get('namespace', '')}/{d['metadata']['name']}": d
        for d in documents
        if d["kind"] == kind
    }


@pytest.fixture(scope="module")
def schema() -> KubernetesSchema:
    return KubernetesSchema(pinned_kubernetes_version())


@pytest.mark.parametrize("env", INVENTORIES)
def test_every_manifest_is_valid_for_the_pinned_kubernetes(
    rendered: dict, schema: KubernetesSchema, env: str
) -> None:
    assert len(rendered[env]) > 25
    problems = {
        f"{d['kind']}/{d['metadata']['name']}": schema.errors(d)
        for d in rendered[env]
        if schema.errors(d)
    }
    assert problems == {}


def test_the_validator_rejects_what_the_api_would_drop(schema: KubernetesSchema) -> None:
    typo = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"selectr": {"a": "b"}, "ports": [{"port": "http"}]},
    }
    errors = " ".join(schema.errors(typo))
    assert "selectr" in errors
    assert "ports/0/port" in errors


def test_prod_differs_from_dev_exactly_where_it_should(rendered: dict) -> None:
    dev, prod = rendered["dev"], rendered["prod"]
    assert by_kind(dev, "HorizontalPodAutoscaler") == {}
    assert set(by_kind(prod, "HorizontalPodAutoscaler")) == {
        "invoices/invoice-app",
        "payments/payment-provider",
    }
    for name, deployment in by_kind(dev, "Deployment").items():
        assert deployment["spec"]["replicas"] == 3, name
    for name, deployment in by_kind(prod, "Deployment").items():
        assert "replicas" not in deployment["spec"], f"{name}: the HPA owns the count"

    dev_ingress = by_kind(dev, "Ingress")["invoices/invoice-app"]["spec"]
    prod_ingress = by_kind(prod, "Ingress")["invoices/invoice-app"]["spec"]
    assert "tls" not in dev_ingress
    assert prod_ingress["tls"] == [
        {"hosts": ["invoices.example.com"], "secretName": "invoices-example-com-tls"}
    ]
    assert prod_ingress["ingressClassName"] == "nginx"
    assert dev_ingress["rules"][0]["host"] == "invoices.localtest.me"

    for name, deployment in by_kind(prod, "Deployment").items():
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image.startswith("registry.example.com/"), name

    def shape(documents: list[dict]) -> set:
        return {
            (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])
            for d in documents
            if d["kind"] != "HorizontalPodAutoscaler"
        }

    assert shape(dev) == shape(prod), "apart from HPAs, both deploy the same objects"


@pytest.mark.parametrize("env", INVENTORIES)
def test_workloads_meet_the_restricted_pod_security_bar(rendered: dict, env: str) -> None:
    workloads = {**by_kind(rendered[env], "Deployment"), **by_kind(rendered[env], "StatefulSet")}
    assert len(workloads) == 4
    for name, workload in workloads.items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert isinstance(pod["securityContext"]["runAsUser"], int), name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert set(container["resources"]) == {"requests", "limits"}, name
            assert not container["image"].endswith(":latest"), name
            assert ":" in container["image"].rsplit("/", 1)[-1], f"{name}: untagged image"
            probes = [container[p] for p in ("startupProbe", "readinessProbe", "livenessProbe")]
            assert all(probes), name
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert {"app.kubernetes.io/name", "app.kubernetes.io/version"} <= set(labels), name


@pytest.mark.parametrize("env", INVENTORIES)
def test_services_probes_use_separate_endpoints(rendered: dict, env: str) -> None:
    for name, deployment in by_kind(rendered[env], "Deployment").items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        strategy = deployment["spec"]["strategy"]["rollingUpdate"]
        assert strategy == {"maxSurge": 1, "maxUnavailable": 0}, name


@pytest.mark.parametrize("env", INVENTORIES)
def test_payment_provider_is_internal_and_isolated(rendered: dict, env: str) -> None:
    documents = rendered[env]
    assert all(s["spec"]["type"] == "ClusterIP" for s in by_kind(documents, "Service").values())
    ingress_backends = [
        path["backend"]["service"]["name"]
        for ingress in by_kind(documents, "Ingress").values()
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert ingress_backends == ["invoice-app"]
    policies = by_kind(documents, "NetworkPolicy")
    for namespace in ("invoices", "payments"):
        deny = policies[f"{namespace}/default-deny"]["spec"]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    allow = policies["payments/payment-provider-allow-invoice-app"]["spec"]["ingress"]
    assert allow == [
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "invoices"}
                    },
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "invoice-app"}},
                }
            ],
            "ports": [{"protocol": "TCP", "port": 8082}],
        }
    ]


@pytest.mark.parametrize("env", INVENTORIES)
def test_nobody_is_granted_anything_cluster_wide(rendered: dict, env: str) -> None:
    kinds = {d["kind"] for d in rendered[env]}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}
    bindings = by_kind(rendered[env], "RoleBinding")
    assert {b["roleRef"]["name"] for b in bindings.values()} == {
        "team-workload-manager",
        "deployer",
    }
    namespaces = {n["metadata"]["name"]: n for n in by_kind(rendered[env], "Namespace").values()}
    for namespace in namespaces.values():
        labels = namespace["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("env", INVENTORIES)
def test_invoice_app_admits_only_ingress_controller_pods_and_dns_goes_to_kube_dns(
    rendered: dict, env: str
) -> None:
    """Both sides of a policy are pods, in dev (the local cluster's Traefik, minikube's
    ingress-nginx) as in prod: an empty `from` would admit every source."""
    policies = by_kind(rendered[env], "NetworkPolicy")
    allow = policies["invoices/invoice-app-allow-ingress-controller"]["spec"]["ingress"]
    assert len(allow) == 1
    assert allow[0]["from"], "invoice-app admits any source"
    for peer in allow[0]["from"]:
        assert set(peer) == {"namespaceSelector", "podSelector"}, peer
    for namespace in ("invoices", "payments"):
        dns = policies[f"{namespace}/allow-dns-egress"]["spec"]["egress"]
        assert dns[0]["to"] == [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ], namespace
