"""Zero-downtime rollouts, no double charge when pods die mid-payment, data that outlives
its database pod, and bad input through the Ingress."""

import json
import re
import uuid
from collections.abc import Callable

import pytest

from tests.ansible.conftest import extra_vars, playbook
from tests.cluster.conftest import containerd_name, containerd_sockets, ctr, kubectl
from tests.e2e.conftest import (
    CONTROL_PLANE,
    HOST,
    INGRESS,
    SERVICES,
    all_paid,
    api_token,
    ingress_traffic,
    kill_mid_run,
    pay_until_all_paid,
    pods,
    public,
    ready,
    seed,
    wait_rolled_out,
)
from tests.support import wait_until


def change_and_roll_out(namespace: str, deployment: str, *change: str) -> None:
    """`kubectl set ...` on a Deployment, then wait until the rollout it starts has finished."""
    kubectl(*change[:2], f"deployment/{deployment}", *change[2:], "-n", namespace)
    wait_rolled_out(namespace, f"deployment/{deployment}")


def test_rollout_of_a_new_image_version_under_traffic_fails_no_request() -> None:
    deployment = json.loads(
        kubectl("get", "deployment", "invoice-app", "-n", "invoices", "-o", "json")
    )
    current = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    # A new version of the image, as the images stage would import it into every node: same
    # content, new tag.
    new = f"{current.rsplit(':', 1)[0]}:rollout-{uuid.uuid4().hex[:8]}"
    for socket in containerd_sockets():
        ctr("images", "tag", containerd_name(current), containerd_name(new), socket=socket)
    try:
        with ingress_traffic() as traffic:
            # Traffic flows before the rollout starts and goes on after the old pods are gone.
            traffic.answered(50)
            change_and_roll_out("invoices", "invoice-app", "set", "image", f"invoice-app={new}")
            traffic.answered(len(traffic.outcomes) + 50)
    finally:
        change_and_roll_out("invoices", "invoice-app", "set", "image", f"invoice-app={current}")
    print(f"rollout: {len(traffic.outcomes)} requests, {len(traffic.failed)} failed")
    assert len(traffic.outcomes) > 100
    assert traffic.failed == []


def _container(namespace: str, pod: str) -> dict:
    return json.loads(kubectl("get", "pod", pod, "-n", namespace, "-o", "json"))["status"][
        "containerStatuses"
    ][0]


def force_kill(namespace: str, pod: str) -> int:
    """SIGKILL to the pod's container through the node's containerd: no SIGTERM, no grace, no
    drain. (`kubectl delete --grace-period=0 --force` only removes the API object; the kubelet
    still stops the container gracefully, and a pay run in it finishes.) The kubelet then
    restarts the container in place. Returns the restart count before the kill."""
    container = _container(namespace, pod)
    ctr("tasks", "kill", "--signal", "SIGKILL", container["containerID"].split("://", 1)[1])
    return container["restartCount"]


def assert_killed(namespace: str, pod: str, restarts_before: int) -> None:
    """The fault landed: the container died of SIGKILL (exit 137) and was started again."""

    def died_of_sigkill() -> bool:
        container = _container(namespace, pod)
        ended = container.get("lastState", {}).get("terminated", {})
        return container["restartCount"] > restarts_before and ended.get("exitCode") == 137

    wait_until(died_of_sigkill, 60, f"{pod} to have died of SIGKILL", interval=0.5)


def kill_pods(*victims: tuple[str, str]) -> Callable[[str], None]:
    """The fault for `kill_mid_run`: SIGKILL to each victim; its check, after the run, that
    each died of it."""
    restarts = {victim: force_kill(*victim) for victim in victims}

    def check(_: str) -> None:
        for (namespace, name), before_kill in restarts.items():
            assert_killed(namespace, name, before_kill)

    return check


def kill_the_database_and_keep_it_away() -> Callable[[str], None]:
    """The fault for `kill_mid_run`: invoices-db scaled to zero and its container SIGKILLed at
    once, so it stays away past invoice-app's connection timeout and the run cannot settle
    what it charged. Its check: the run did end without settling (not a 200), then the
    database comes back."""
    container = _container("invoices", "invoices-db-0")["containerID"].split("://", 1)[1]
    kubectl("scale", "statefulset/invoices-db", "-n", "invoices", "--replicas=0")
    ctr("tasks", "kill", "--signal", "SIGKILL", container)

    def check(answer: str) -> None:
        try:
            assert answer.strip() != "200", "the run settled: the database was not away"
        finally:
            kubectl("scale", "statefulset/invoices-db", "-n", "invoices", "--replicas=1")
            wait_rolled_out("invoices", "statefulset/invoices-db")

    return check


def on_this_host(namespace: str, app: str) -> str:
    """A Ready pod of `app` on this host's node, whose containerd `ctr` reaches (with more
    than one node, the workers run containerds of their own)."""
    return next(
        p["metadata"]["name"]
        for p in pods(namespace, app)
        if ready(p) and p["spec"].get("nodeName") == CONTROL_PLANE
    )


def test_pods_killed_while_paying_never_charge_an_invoice_twice() -> None:
    serving = on_this_host("invoices", "invoice-app")
    provider = on_this_host("payments", "payment-provider")
    figures = kill_mid_run(
        lambda: kill_pods(("invoices", serving), ("payments", provider)), serving, 4000
    )
    print(
        f"kill: {figures['at_kill']} of 4000 charged when {serving} and {provider} were killed;"
        f" {figures['charged']} charges for 4000 new invoices, {figures['runs']} more pay runs"
    )
    assert all_paid()
    assert figures["chargedTwice"] == [], "charged twice"
    assert figures["charged"] == 4000, "every invoice charged exactly once"


def test_the_database_killed_while_paying_never_charges_an_invoice_twice() -> None:
    serving = next(p["metadata"]["name"] for p in pods("invoices", "invoice-app") if ready(p))
    figures = kill_mid_run(kill_the_database_and_keep_it_away, serving, 4000)
    print(
        f"database kill: {figures['at_kill']} of 4000 charged when invoices-db-0 was killed"
        " and kept away until the run had ended unsettled;"
        f" {figures['charged']} charges for 4000 new invoices"
    )
    assert all_paid()
    assert figures["chargedTwice"] == [], "charged twice"
    assert figures["charged"] == 4000, "every invoice charged exactly once"


def test_paid_state_survives_the_database_pod() -> None:
    pay_until_all_paid()
    before = {i["InvoiceId"]: i["Status"] for i in public("GET", "/invoices").body}
    gone = json.loads(kubectl("get", "pod", "invoices-db-0", "-n", "invoices", "-o", "json"))
    kubectl("delete", "pod", "invoices-db-0", "-n", "invoices")

    def replaced_and_ready() -> bool:
        now = json.loads(
            kubectl(
                "get", "pod", "invoices-db-0", "-n", "invoices", "-o", "json", "--ignore-not-found"
            )
            or "{}"
        )
        return bool(now) and now["metadata"]["uid"] != gone["metadata"]["uid"] and ready(now)

    wait_until(replaced_and_ready, 180, "a new invoices-db-0 to be Ready", interval=1)
    # Until invoice-app reconnects, the Ingress answers 502-504; then invoice-app answers
    # from whatever the new database pod holds.
    wait_until(
        lambda: public("GET", "/invoices?limit=1").status not in (502, 503, 504),
        120,
        "invoice-app to answer from the new database pod",
    )
    listed = public("GET", "/invoices")
    assert listed.status == 200, listed
    assert {i["InvoiceId"]: i["Status"] for i in listed.body} == before


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/no-such-route", None, 404),
        ("GET", "/invoices/no-such-invoice", None, 404),
        ("GET", "/invoices?limit=-1", None, 400),
        ("DELETE", "/invoices", None, 405),
        ("POST", "/invoices/pay", b"x" * 300_000, 413),
        ("GET", "/payments/summary", None, 404),
    ],
)
def test_bad_input_through_the_ingress_gets_a_4xx_never_a_5xx(
    method: str, path: str, body: bytes | None, status: int
) -> None:
    reply = public(method, path, body)
    assert reply.status == status, reply
    # The answer is invoice-app's own JSON error, not the Ingress finding no backend (Traefik's
    # own 404 is plain text).
    assert isinstance(reply.body, dict), reply
    assert isinstance(reply.body.get("error"), str), reply
    assert reply.body["error"], reply


def test_the_original_exercise_pods_show_three_and_three_ready() -> None:
    # Earlier proofs delete pods: wait until each Deployment has settled (every wanted replica
    # Ready), then ask for three.
    for namespace, app in SERVICES:

        def settled(n: str = namespace, a: str = app) -> bool:
            wanted = json.loads(kubectl("get", "deployment", a, "-n", n, "-o", "json"))
            return len([p for p in pods(n, a) if ready(p)]) == wanted["spec"]["replicas"]

        wait_until(settled, 180, f"the {app} Deployment to settle")
        assert len([p for p in pods(namespace, app) if ready(p)]) == 3, app


def test_the_original_exercise_pay_all_then_list_shows_every_invoice_paid() -> None:
    # Fresh pending invoices first: earlier proofs have paid everything there was.
    seed(5)
    assert not all_paid(), "seeding left nothing pending"
    reply = public("POST", "/invoices/pay")
    assert reply.status == 200
    assert all_paid()


def test_the_original_exercise_half_failure_rate_pays_about_half_in_one_run() -> None:
    seed(200)
    pending = sum(not i["IsPaid"] for i in public("GET", "/invoices").body)
    change_and_roll_out("payments", "payment-provider", "set", "env", "FAILURE_RATE=0.5")
    try:
        assert public("POST", "/rest/v1/invoices/pay").body is False
        statuses = [i["status"] for i in public("GET", "/rest/v1/invoices").body]
        newly_paid = pending - statuses.count("PENDING")
        print(f"FAILURE_RATE=0.5: {newly_paid} of {pending} pending invoices paid in one run")
        assert 0.35 * pending < newly_paid < 0.65 * pending
        # The verify stage still gets everything paid, with a pay run per round of declines.
        verified = playbook(
            "-i",
            "inventories/dev",
            "playbooks/verify.yml",
            *extra_vars(
                {
                    "verify_base_url": INGRESS,
                    "verify_host_header": HOST,
                    "verify_validate_certs": False,
                    "verify_api_token": api_token(),
                }
            ),
        )
        assert re.search(r"All \d+ invoices are paid", verified.stdout), verified.stdout[-3000:]
    finally:
        change_and_roll_out("payments", "payment-provider", "set", "env", "FAILURE_RATE-")
    pay_until_all_paid()


def test_the_billing_cronjob_pays_the_pending_invoices_through_the_same_code_path() -> None:
    """A run of the scheduled billing, started now from its CronJob: its pod reaches the
    provider and the database under the same policies, and pays what is pending."""
    cronjob = json.loads(
        kubectl("get", "cronjob", "invoice-app-billing", "-n", "invoices", "-o", "json")
    )
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    seed(20)
    assert not all_paid(), "seeding left nothing pending"
    name = f"billing-now-{uuid.uuid4().hex[:6]}"
    kubectl("create", "job", name, "--from=cronjob/invoice-app-billing", "-n", "invoices")
    try:
        finished: dict[str, str] = {}

        def job_finished() -> bool:
            job = json.loads(kubectl("get", "job", name, "-n", "invoices", "-o", "json"))
            for condition in job.get("status", {}).get("conditions", []):
                if condition["type"] in ("Complete", "Failed") and condition["status"] == "True":
                    finished.update(condition)
            return bool(finished)

        wait_until(job_finished, 300, f"job {name} to complete or fail", interval=2)
        assert finished["type"] == "Complete", finished
        assert all_paid(), "the billing run completed but left invoices pending"
    finally:
        kubectl("delete", "job", name, "-n", "invoices", "--wait=false")
