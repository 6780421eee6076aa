"""Which breakage each end-to-end proof must catch, and how its failure reads.

One entry per claim of the proof table (docs and README): the breakage that makes the claim
false, the proofs (node ids under tests/e2e) that must then fail, and a pattern their output
must contain, so that a proof failing for another reason (a platform already broken, a typo)
does not count as having caught the breakage.
"""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from tests.e2e.conftest import CONTROL_PLANE, rebalance
from tests.mutations.breakages import added, mutant_image, patched, removed, restart_pods

ISOLATION = "test_isolation.py"
NODES = "test_nodes.py"
RESILIENCE = "test_resilience.py"


@dataclass(frozen=True)
class Mutation:
    name: str
    breakage: str
    proofs: tuple[str, ...]
    fails_with: str  # a regular expression the failing proofs' output must match
    apply: Callable[[], AbstractContextManager[None]]
    ci: bool = True  # part of CI's run; the rest run in `make prove-the-proofs`
    # The Ready nodes its proofs need: those needing more than E2E_EXPECT_NODES (1 unless set)
    # are left out, since their proofs skip on a smaller cluster.
    nodes: int = 1


def _ops(*operations: tuple[str, str, object]) -> list[dict]:
    return [
        {"op": op, "path": path, **({} if op == "remove" else {"value": value})}
        for op, path, value in operations
    ]


def _binding(kind: str, name: str, namespace: str | None, role: str, subject: dict) -> dict:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role" if kind == "RoleBinding" else "ClusterRole",
            "name": role,
        },
        "subjects": [subject],
    }


@contextmanager
def _database_on_an_empty_dir() -> Iterator[None]:
    """invoices-db's data directory on an emptyDir instead of its PVC; invoice-app restarted
    so that it creates its schema there, and again against the restored database."""
    mount = "/spec/template/spec/containers/0/volumeMounts/0"
    try:
        with patched(
            "statefulset",
            "invoices-db",
            "invoices",
            _ops(
                ("test", f"{mount}/name", "data"),
                ("replace", f"{mount}/name", "scratch"),
                ("add", "/spec/template/spec/volumes/-", {"name": "scratch", "emptyDir": {}}),
            ),
        ):
            restart_pods("invoices", "invoice-app")
            yield
    finally:
        restart_pods("invoices", "invoice-app")


@contextmanager
def _pinned_to_one_node() -> Iterator[None]:
    """invoice-app's pods all on the control-plane node, by a nodeSelector. Removing the spread
    constraint alone would not surely break the claim: the scheduler's default spreading
    (ScheduleAnyway, by hostname) still tends to place one ReplicaSet's pods apart. On exit
    its pods are spread again, since the rollout back starts the new pods beside the pinned
    ones."""
    selector = {"kubernetes.io/hostname": CONTROL_PLANE}
    try:
        with patched(
            "deployment",
            "invoice-app",
            "invoices",
            _ops(("add", "/spec/template/spec/nodeSelector", selector)),
        ):
            yield
    finally:
        rebalance("invoices", "invoice-app")


PROVIDER_FROM = "/spec/ingress/0/from/0"
INVOICE_APP = "/spec/template/spec/containers/0"
# Tolerating these taints with no tolerationSeconds keeps a pod bound to a lost node for ever.
LOST_NODE_TAINTS = [
    {"key": f"node.kubernetes.io/{taint}", "operator": "Exists", "effect": "NoExecute"}
    for taint in ("unreachable", "not-ready")
]


def _provider_trusts_namespace() -> AbstractContextManager[None]:
    return patched(
        "networkpolicy",
        "payment-provider-allow-invoice-app",
        "payments",
        _ops(("remove", f"{PROVIDER_FROM}/podSelector", None)),
    )


MUTATIONS = [
    Mutation(
        "ingress-deleted",
        "invoice-app's Ingress deleted",
        (f"{ISOLATION}::test_invoice_app_answers_through_the_ingress_on_loopback",),
        r"does not answer through the Ingress",
        lambda: removed("ingress", "invoice-app", "invoices"),
    ),
    Mutation(
        # A NodePort or LoadBalancer is refused by the namespace's ResourceQuota (0 of each).
        "provider-published",
        "an Ingress route to payment-provider",
        (f"{ISOLATION}::test_payment_provider_has_no_ingress_nodeport_or_loadbalancer",),
        r"'payment-provider' not in",
        lambda: added(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": "payment-provider-published", "namespace": "payments"},
                "spec": {
                    "rules": [
                        {
                            "host": "payments.localtest.me",
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {
                                            "service": {
                                                "name": "payment-provider",
                                                "port": {"number": 8082},
                                            }
                                        },
                                    }
                                ]
                            },
                        }
                    ]
                },
            }
        ),
    ),
    Mutation(
        "payments-default-deny-removed",
        "the default-deny NetworkPolicy of `payments` deleted",
        (f"{ISOLATION}::test_only_invoice_app_reaches_payment_provider_and_its_database",),
        r"the bystander in payments",
        lambda: removed("networkpolicy", "default-deny", "payments"),
    ),
    Mutation(
        "provider-trusts-namespace",
        "payment-provider's allow rule widened to every pod of `invoices`",
        (
            f"{ISOLATION}::"
            "test_a_pod_in_invoices_without_invoice_app_labels_is_blocked_by_the_providers_rule",
        ),
        r"\+ connected",
        _provider_trusts_namespace,
    ),
    Mutation(
        "provider-trusts-labels",
        "payment-provider's allow rule trusts invoice-app's labels in any namespace",
        (f"{ISOLATION}::test_a_pod_wearing_invoice_app_labels_in_another_namespace_is_blocked",),
        r"\+ connected",
        lambda: patched(
            "networkpolicy",
            "payment-provider-allow-invoice-app",
            "payments",
            _ops(("replace", f"{PROVIDER_FROM}/namespaceSelector", {})),
        ),
    ),
    Mutation(
        "invoice-app-ingress-open",
        "invoice-app's ingress policy admits every pod of every namespace",
        (f"{ISOLATION}::test_invoice_app_is_reached_through_the_ingress_and_never_directly",),
        r"\+ connected",
        lambda: patched(
            "networkpolicy",
            "invoice-app-allow-ingress-controller",
            "invoices",
            _ops(("replace", "/spec/ingress/0/from", [{"namespaceSelector": {}}])),
        ),
    ),
    Mutation(
        "dns-policy-wrong-pods",
        "the DNS egress policy selects pods that are not kube-dns",
        (f"{ISOLATION}::test_names_resolve_only_where_the_platforms_dns_egress_policy_allows",),
        r"unresolved",
        lambda: patched(
            "networkpolicy",
            "allow-dns-egress",
            "invoices",
            _ops(
                ("replace", "/spec/egress/0/to/0/podSelector/matchLabels/k8s-app", "dns-elsewhere")
            ),
        ),
    ),
    Mutation(
        "psa-label-removed",
        "`invoices` lost its Pod Security `enforce` label",
        (f"{ISOLATION}::test_pod_security_rejects_unsafe_pods",),
        r"violates PodSecurity",
        lambda: patched(
            "namespace",
            "invoices",
            None,
            _ops(("remove", "/metadata/labels/pod-security.kubernetes.io~1enforce", None)),
        ),
    ),
    Mutation(
        "writable-root-filesystem",
        "payment-provider's root filesystem made writable",
        (f"{ISOLATION}::test_every_running_pod_is_non_root_read_only_and_adds_no_capabilities",),
        r"payment-provider-[a-z0-9-]+/payment-provider",
        lambda: patched(
            "deployment",
            "payment-provider",
            "payments",
            _ops(("replace", f"{INVOICE_APP}/securityContext/readOnlyRootFilesystem", False)),
        ),
    ),
    Mutation(
        "team-bound-in-other-namespace",
        "team-invoices also bound to the workload role in `payments`",
        (f"{ISOLATION}::test_each_team_manages_only_its_own_namespace",),
        r"can_i\('create', 'deployments', 'payments'",
        lambda: added(
            _binding(
                "RoleBinding",
                "mutation-team-invoices-in-payments",
                "payments",
                "team-workload-manager",
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "team-invoices"},
            )
        ),
    ),
    Mutation(
        "deployer-cluster-admin",
        "the `invoices` deployer ServiceAccount bound to cluster-admin",
        (
            f"{ISOLATION}::test_each_deployer_service_account_is_confined_to_its_namespace",
            f"{ISOLATION}::test_nobody_but_the_cluster_admins_is_bound_to_cluster_admin",
        ),
        r"ServiceAccount', 'deployer'",
        lambda: added(
            _binding(
                "ClusterRoleBinding",
                "mutation-deployer-cluster-admin",
                None,
                "cluster-admin",
                {"kind": "ServiceAccount", "name": "deployer", "namespace": "invoices"},
            )
        ),
    ),
    Mutation(
        "replicas-two",
        "payment-provider scaled to 2 replicas",
        (f"{RESILIENCE}::test_the_original_exercise_pods_show_three_and_three_ready",),
        r"AssertionError: payment-provider",
        lambda: patched(
            "deployment", "payment-provider", "payments", _ops(("replace", "/spec/replicas", 2))
        ),
    ),
    Mutation(
        "provider-unreachable",
        "invoice-app charges at an address where no provider listens",
        (f"{RESILIENCE}::test_the_original_exercise_pay_all_then_list_shows_every_invoice_paid",),
        r"assert False",
        lambda: patched(
            "deployment",
            "invoice-app",
            "invoices",
            {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "invoice-app",
                                    "env": [
                                        {
                                            "name": "PAYMENT_PROVIDER_URL",
                                            "value": "http://127.0.0.1:9",
                                        }
                                    ],
                                }
                            ]
                        }
                    }
                }
            },
        ),
    ),
    Mutation(
        "bad-limit-unchecked",
        "invoice-app passes `limit` to the database unchecked (mutant image)",
        (f"{RESILIENCE}::test_bad_input_through_the_ingress_gets_a_4xx_never_a_5xx",),
        r"Reply\(status=5\d\d",
        lambda: mutant_image(
            "invoices",
            "invoice-app",
            "invoice_app/app.py",
            'return query_cursor("after"), '
            'query_integer("limit", None, minimum=1, maximum=MAX_PAGE)',
            'return query_cursor("after"), int(bottle.request.query.get("limit") or 0) or None',
            "limit-unchecked",
        ),
    ),
    Mutation(
        "billing-outside-policy",
        "the billing CronJob's pods lose invoice-app's name label, so no policy lets them out",
        (
            f"{RESILIENCE}::test_the_billing_cronjob_pays_the_pending_invoices_through_the_same_code_path",
        ),
        r"BackoffLimitExceeded",
        lambda: patched(
            "cronjob",
            "invoice-app-billing",
            "invoices",
            _ops(
                (
                    "replace",
                    "/spec/jobTemplate/spec/template/metadata/labels/app.kubernetes.io~1name",
                    "billing-elsewhere",
                )
            ),
        ),
    ),
    Mutation(
        "failure-rate-ignored",
        "payment-provider ignores FAILURE_RATE (mutant image)",
        (f"{RESILIENCE}::test_the_original_exercise_half_failure_rate_pays_about_half_in_one_run",),
        r"assert True is False",
        lambda: mutant_image(
            "payments",
            "payment-provider",
            "payment_provider/config.py",
            'failure_rate=settings.number(env, "FAILURE_RATE", 0.0, maximum=1.0),',
            "failure_rate=0.0,",
            "failure-rate-ignored",
        ),
    ),
    Mutation(
        "paid-on-any-answer",
        "the original's bug patched back in: an invoice is paid on any answer (mutant image)",
        (f"{RESILIENCE}::test_the_original_exercise_half_failure_rate_pays_about_half_in_one_run",),
        r"assert True is False",
        lambda: mutant_image(
            "invoices",
            "invoice-app",
            "invoice_app/domain.py",
            "        if result.outcome is Outcome.CONFIRMED and result.transaction_id:\n"
            "            settlement.paid.append((invoice.id, result.transaction_id))",
            "        if True:\n"
            '            settlement.paid.append((invoice.id, result.transaction_id or "none"))',
            "paid-on-any-answer",
        ),
    ),
    Mutation(
        "rollout-unguarded",
        "invoice-app rolls out with maxUnavailable 100%, no surge, no startup or readiness probe",
        (f"{RESILIENCE}::test_rollout_of_a_new_image_version_under_traffic_fails_no_request",),
        r"rollout: \d+ requests, [1-9]\d* failed",
        lambda: patched(
            "deployment",
            "invoice-app",
            "invoices",
            _ops(
                ("replace", "/spec/strategy/rollingUpdate/maxUnavailable", "100%"),
                ("replace", "/spec/strategy/rollingUpdate/maxSurge", 0),
                ("remove", f"{INVOICE_APP}/startupProbe", None),
                ("remove", f"{INVOICE_APP}/readinessProbe", None),
            ),
        ),
        ci=False,
    ),
    Mutation(
        "idempotency-key-per-request",
        "invoice-app sends a new Idempotency-Key with every request (mutant image)",
        (
            f"{RESILIENCE}::test_pods_killed_while_paying_never_charge_an_invoice_twice",
            f"{RESILIENCE}::test_the_database_killed_while_paying_never_charges_an_invoice_twice",
        ),
        r"charged twice",
        lambda: mutant_image(
            "invoices",
            "invoice-app",
            "invoice_app/domain.py",
            'return f"invoice-{self.id}-attempt-{self.charge_attempt}"',
            "return f\"invoice-{self.id}-attempt-{__import__('uuid').uuid4().hex}\"",
            "key-per-request",
        ),
        ci=False,
    ),
    Mutation(
        "database-on-empty-dir",
        "invoices-db keeps its data on an emptyDir instead of its PVC",
        (f"{RESILIENCE}::test_paid_state_survives_the_database_pod",),
        r"listed\.status == 200|assert \{.*\} == \{",
        _database_on_an_empty_dir,
        ci=False,
    ),
    # Proofs across nodes (tests/e2e/test_nodes.py): a cluster of three, E2E_EXPECT_NODES=3.
    Mutation(
        "pinned-to-one-node",
        "invoice-app's pods pinned to the control-plane node by a nodeSelector",
        (f"{NODES}::test_each_service_runs_its_three_pods_on_three_different_nodes",),
        r"invoice-app's Ready pods crowd a node",
        _pinned_to_one_node,
        nodes=3,
    ),
    Mutation(
        "budget-allows-three",
        "invoice-app's PodDisruptionBudget allows three pods unavailable at once",
        (
            f"{NODES}::"
            "test_draining_two_nodes_under_traffic_fails_no_request_and_each_budget_holds_one_back",
        ),
        r"invoice-app's PodDisruptionBudget held back no eviction",
        lambda: patched(
            "poddisruptionbudget",
            "invoice-app",
            "invoices",
            _ops(("replace", "/spec/maxUnavailable", 3)),
        ),
        ci=False,
        nodes=3,
    ),
    Mutation(
        "lost-node-tolerated",
        "invoice-app's pods tolerate an unreachable or not-ready node for ever",
        (f"{NODES}::test_a_node_lost_while_paying_leaves_every_invoice_charged_exactly_once",),
        r"waiting for the pods lost with \S+ to be replaced",
        lambda: patched(
            "deployment",
            "invoice-app",
            "invoices",
            _ops(("add", "/spec/template/spec/tolerations", LOST_NODE_TAINTS)),
        ),
        ci=False,
        nodes=3,
    ),
    Mutation(
        "provider-allow-removed",
        "payment-provider's allow policy for invoice-app deleted",
        (f"{NODES}::test_network_policies_hold_between_pods_on_different_nodes",),
        r"the positive control: invoice-app's labels on \S+, to payment-provider",
        lambda: removed("networkpolicy", "payment-provider-allow-invoice-app", "payments"),
        nodes=3,
    ),
    Mutation(
        "provider-trusts-namespace-across-nodes",
        "payment-provider's allow rule widened to every pod of `invoices`",
        (f"{NODES}::test_network_policies_hold_between_pods_on_different_nodes",),
        r"no labels, on \S+, to payment-provider",
        _provider_trusts_namespace,
        nodes=3,
    ),
]
