"""The NetworkPolicy enforcer's rule rendering, checked without a cluster (pure function)."""

import importlib.util

import pytest

from tests.cluster.conftest import ROLE

pytestmark = pytest.mark.cluster

_spec = importlib.util.spec_from_file_location("cluster_agent", ROLE / "files" / "cluster-agent.py")
agent = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(agent)

NAMESPACES = {
    "shop": {"kubernetes.io/metadata.name": "shop"},
    "ops": {"kubernetes.io/metadata.name": "ops"},
}


def _pod(ns: str, name: str, ip: str, labels: dict, ports: list | None = None) -> dict:
    container = {"name": "c", "ports": ports or []}
    return {
        "metadata": {"namespace": ns, "name": name, "uid": f"uid-{name}", "labels": labels},
        "spec": {"containers": [container]},
        "status": {"podIP": ip},
    }


WEB = _pod("shop", "web", "10.244.0.10", {"app": "web"}, [{"name": "http", "containerPort": 8080}])
OPS = _pod("ops", "probe", "10.244.0.20", {"role": "probe"})
OTHER = _pod("shop", "other", "10.244.0.30", {"app": "other"})


def _policy(spec: dict, ns: str = "shop") -> dict:
    return {"metadata": {"namespace": ns, "name": "p"}, "spec": spec}


def _chain(rules: str, prefix: str, pod: dict) -> list[str]:
    name = agent.chain_name(prefix, pod)
    return [line for line in rules.splitlines() if line.startswith(f"-A {name} ")]


def test_unselected_pods_get_no_chain_and_pod_traffic_is_accepted_last() -> None:
    rules = agent.render_rules([WEB, OPS], NAMESPACES, [], "10.244.0.0/24")
    assert "LCNP-I-" not in rules
    assert "LCNP-E-" not in rules
    assert rules.splitlines()[-2:] == [
        "-A LCNP-FORWARD -s 10.244.0.0/24 -j ACCEPT",
        "-A LCNP-FORWARD -d 10.244.0.0/24 -j ACCEPT",
    ]


def test_default_deny_ingress_rejects_everything_for_the_selected_pods_only() -> None:
    deny = _policy({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]})
    rules = agent.render_rules([WEB, OPS, OTHER], NAMESPACES, [deny], "10.244.0.0/24")
    web = _chain(rules, "I", WEB)
    assert not any("--set-xmark 0x100000/0x100000" in r for r in web)
    assert web[-2].endswith("-p tcp -j REJECT --reject-with tcp-reset")
    assert _chain(rules, "I", OTHER) == []
    assert _chain(rules, "E", WEB) == []  # Ingress only


def test_namespace_and_pod_selector_allow_resolves_the_named_port() -> None:
    allow = _policy(
        {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "ops"}
                            },
                            "podSelector": {
                                "matchExpressions": [
                                    {"key": "role", "operator": "In", "values": ["probe"]}
                                ]
                            },
                        }
                    ],
                    "ports": [{"port": "http"}],
                }
            ],
        }
    )
    rules = agent.render_rules([WEB, OPS, OTHER], NAMESPACES, [allow], "10.244.0.0/24")
    allowed = [r for r in _chain(rules, "I", WEB) if "--set-xmark 0x100000/0x100000" in r]
    assert allowed == [
        f"-A {agent.chain_name('I', WEB)} -s 10.244.0.20/32 -p tcp -m tcp --dport 8080 "
        "-j MARK --set-xmark 0x100000/0x100000"
    ]


def test_egress_ip_block_with_except_gets_its_own_chain() -> None:
    egress = _policy(
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"ipBlock": {"cidr": "10.244.0.0/24", "except": ["10.244.0.20/32"]}}]}
            ],
        }
    )
    rules = agent.render_rules([WEB, OPS], NAMESPACES, [egress], "10.244.0.0/24")
    sub = [line for line in rules.splitlines() if line.startswith("-A LCNP-X-")]
    assert sub[0].endswith("-d 10.244.0.20/32 -j RETURN")
    assert sub[1].endswith("-j MARK --set-xmark 0x100000/0x100000")
    assert any("-d 10.244.0.0/24 -j LCNP-X-" in r for r in _chain(rules, "E", WEB))
