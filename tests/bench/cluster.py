"""Benchmarks on the local cluster: deploy against the kubectl floor, the idempotent re-run,
paying through the Ingress against the provider's floor, images, and the cluster itself."""

import json
import re
import statistics
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from collections import Counter
from pathlib import Path

from tests.ansible.conftest import playbook, recap
from tests.bench.checks import (
    check,
    check_all_paid,
    check_ledger,
    check_only_200s,
    check_pay_report,
    statuses_in,
)
from tests.bench.pay import FLOOR_CHARGES, check_floor
from tests.cluster.conftest import KUBECONFIG, KUBECTL, kubectl
from tests.e2e.conftest import in_invoice_app, pods, provider_summary, public

WORKLOADS = [
    ("invoices", "statefulset/invoices-db"),
    ("payments", "statefulset/payments-db"),
    ("payments", "deployment/payment-provider"),
    ("invoices", "deployment/invoice-app"),
]
CACHE = Path.home() / ".cache" / "invoicing-platform"
SUPERVISOR_PIDFILE = Path("/run/invoicing-platform/cluster/supervisord.pid")


def _delete_namespaces() -> None:
    kubectl(
        "delete",
        "namespace",
        "invoices",
        "payments",
        "--ignore-not-found",
        "--wait=true",
        timeout=300,
    )


def _timed_playbook(*args: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = playbook(*args)
    return time.perf_counter() - started, result.stdout


def deploy_versus_floor() -> dict:
    """Cold deploy (no namespaces) with deploy.yml, then the same manifests with kubectl."""
    rendered = Path(tempfile.mkdtemp(prefix="invoicing-bench-render-"))
    playbook("playbooks/deploy.yml", "-e", f"platform_render_dir={rendered}")
    order = [
        "platform",
        "invoices-db",
        "payments-db",
        "payment-provider",
        "invoice-app",
        "team-access",
    ]
    combined = rendered / "all.yaml"
    combined.write_text("\n---\n".join((rendered / f"{name}.yaml").read_text() for name in order))

    _delete_namespaces()
    ansible_seconds, _ = _timed_playbook("playbooks/deploy.yml")

    _delete_namespaces()
    started = time.perf_counter()
    subprocess.run(
        [KUBECTL, "--kubeconfig", KUBECONFIG, "apply", "-f", str(combined)],
        check=True,
        capture_output=True,
    )
    for namespace, workload in WORKLOADS:
        kubectl("rollout", "status", workload, "-n", namespace, "--timeout=300s", timeout=310)
    floor_seconds = time.perf_counter() - started

    # Back to the state Ansible owns (the floor applied the same objects, without its labels
    # of last-applied configuration), so later runs start from a normal deployment.
    playbook("playbooks/deploy.yml")
    return {
        "ansible_seconds": round(ansible_seconds, 1),
        "floor_seconds": round(floor_seconds, 1),
        "ratio": round(ansible_seconds / floor_seconds, 2),
    }


def idempotent_rerun(runs: int = 3) -> dict:
    # One run first, unmeasured: after a fresh deploy its verify stage pays the seeded invoices.
    playbook("site.yml")
    samples = []
    for _ in range(runs):
        seconds, output = _timed_playbook("site.yml")
        counts = recap(output)
        samples.append((seconds, counts["ok"], counts["changed"]))
    return {
        "median_seconds": round(statistics.median(s[0] for s in samples), 1),
        "tasks_ok": samples[-1][1],
        "changed": max(s[2] for s in samples),
        "runs": runs,
    }


PROVIDER_METRICS = """
import urllib.request
print(urllib.request.urlopen("http://127.0.0.1:9092/metrics", timeout=30).read().decode())
"""


def provider_pay_statuses() -> Counter[str]:
    """How payment-provider answered POST /payments/pay since its pods started, by status,
    summed over its pods (each reads its own metrics port inside the pod)."""
    total: Counter[str] = Counter()
    for pod in pods("payments", "payment-provider"):
        name = pod["metadata"]["name"]
        text = kubectl("exec", "-n", "payments", name, "--", "python3", "-c", PROVIDER_METRICS)
        total.update(statuses_in(text))
    return total


def _provider_pods() -> set[str]:
    return {p["metadata"]["name"] for p in pods("payments", "payment-provider")}


def pay_through_the_ingress(count: int = 10_000) -> dict:
    """Pays `count` fresh invoices through the Ingress (one pay run, as a client starts it),
    then the floor: payment-provider's Service driven from inside an invoice-app pod with the
    same charges over PAY_CONCURRENCY persistent connections. Both runs must charge each
    payment once, with only 200s, before a figure is kept."""
    what = "pay, cluster: platform"
    _pay_leftovers(what)
    prefix = f"B{uuid.uuid4().hex[:8]}"
    in_invoice_app("-m", "invoice_app", "seed", str(count), "--prefix", prefix, timeout=300)
    provider = _provider_pods()
    before, statuses = provider_summary(), provider_pay_statuses()
    twice_before = set(before["chargedTwice"])

    started = time.perf_counter()
    reply = public("POST", "/invoices/pay", timeout=900)
    seconds = time.perf_counter() - started

    check_pay_report(reply, count, what)
    listed = check_all_paid(
        lambda after: public("GET", f"/invoices?limit=1000&after={urllib.parse.quote(after)}"),
        what,
        after=prefix,
        prefix=prefix,
    )
    check(listed == count, f"{what}: GET /invoices lists {listed} of the {count} seeded")
    after = provider_summary()
    check_ledger(_since(before, after, twice_before), count, what)
    check(_provider_pods() == provider, f"{what}: payment-provider's pods changed mid-run")
    check_only_200s(_delta(provider_pay_statuses(), statuses), count, what)

    samples = [_floor_run(count, f"F{prefix}{run}", provider, twice_before) for run in "abc"]
    floor = min(samples, key=lambda sample: sample["seconds"])

    ours = count / seconds
    base = count / floor["seconds"]
    return {
        "invoices": count,
        "seconds": round(seconds, 1),
        "per_second": round(ours),
        "floor_seconds": round(floor["seconds"], 1),
        "floor_concurrency": floor["concurrency"],
        "floor_per_second": round(base),
        "floor_samples_per_second": [round(count / s["seconds"]) for s in samples],
        "ratio": round(ours / base, 2),
        "charged_twice_before_this_run": len(twice_before),
    }


def _floor_run(count: int, prefix: str, provider: set[str], twice_before: set[str]) -> dict:
    """One run of the floor, checked like the platform's. kube-proxy (iptables) sends each
    new connection to a random provider pod, and each pod has its CPU limit, so how the
    PAY_CONCURRENCY connections happen to spread moves the figure: the floor is the best of
    three runs, each on fresh connections."""
    what = f"pay, cluster: floor run {prefix}"
    before, statuses = provider_summary(), provider_pay_statuses()
    floor = json.loads(
        in_invoice_app("-c", FLOOR_CHARGES.read_text(), str(count), prefix, timeout=900)
    )
    check_floor(floor, count, what)
    check_ledger(_since(before, provider_summary(), twice_before), count, what)
    check(_provider_pods() == provider, f"{what}: payment-provider's pods changed mid-run")
    check_only_200s(_delta(provider_pay_statuses(), statuses), count, what)
    return floor


def _pay_leftovers(what: str, within: float = 180) -> None:
    """Pays what earlier runs left pending, so the measured run's report is this run's
    invoices only. A run killed by a test leaves its invoices leased until the lease lapses,
    hence the retries; the Antaeus route answers whether anything is still pending."""
    deadline = time.monotonic() + within
    while True:
        reply = public("POST", "/rest/v1/invoices/pay", timeout=600)
        if reply.status == 200 and reply.body is True:
            return
        check(time.monotonic() < deadline, f"{what}: invoices still pending after {within} s")
        time.sleep(5)


def _since(before: dict, after: dict, twice_before: set[str]) -> dict:
    """The provider's summary for what happened between two readings of it: the shared
    ledger keeps every earlier run's charges."""
    return {
        "charged": after["charged"] - before["charged"],
        "chargedTwice": sorted(set(after["chargedTwice"]) - twice_before),
    }


def _delta(now: Counter[str], then: Counter[str]) -> dict[str, float]:
    return {status: now[status] - then[status] for status in now}


def images() -> dict:
    sizes = {}
    for line in subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines():
        name, size = line.split(" ", 1)
        # Newest first: the first tag of each repository is the one the last build made
        # (older recipes' tags stay in the engine until pruned).
        if name.startswith("invoicing-platform/"):
            sizes.setdefault(name.split("/", 1)[1].split(":")[0], size)
    no_change, _ = _timed_playbook("playbooks/images.yml")
    return {"sizes": sizes, "no_change_rebuild_seconds": round(no_change, 1)}


def local_cluster() -> dict:
    """The cold compile (as the build recorded it); a rerun on the healthy cluster; teardown and
    a bring-up from the warm cache; the idle cluster's memory right after it (no workloads).
    Leaves the cluster up with the images imported again, and nothing deployed."""
    build = next(CACHE.glob("kubernetes-*/build-seconds"), None)
    rerun, _ = _timed_playbook("playbooks/cluster.yml")
    teardown, _ = _timed_playbook("playbooks/teardown.yml")
    warm, _ = _timed_playbook("playbooks/cluster.yml")
    time.sleep(30)  # let start-up settle before reading memory
    rss_mib = round(_tree_rss_kib(int(SUPERVISOR_PIDFILE.read_text())) / 1024)
    three_nodes = _three_node_warm_bring_up()
    playbook("playbooks/images.yml")
    return {
        "three_node_warm_bring_up_seconds": round(three_nodes, 1),
        "kubernetes_cold_compile_seconds": int(build.read_text()) if build else None,
        "rerun_cluster_playbook_seconds": round(rerun, 1),
        "teardown_seconds": round(teardown, 1),
        "warm_bring_up_seconds": round(warm, 1),
        "idle_host_processes_rss_mib": rss_mib,
    }


def _three_node_warm_bring_up() -> float:
    """Teardown, then three nodes from the warm cache (the worker image built once before the
    timed run, as the Kubernetes binaries are), then teardown and one node again."""
    three = ("-e", "local_cluster_nodes=3")
    playbook("playbooks/cluster.yml", *three)  # builds the worker image if it is not cached
    playbook("playbooks/teardown.yml")
    seconds, _ = _timed_playbook("playbooks/cluster.yml", *three)
    playbook("playbooks/teardown.yml")
    playbook("playbooks/cluster.yml")
    return seconds


def _tree_rss_kib(root: int) -> int:
    """RSS of a process and all its descendants: supervisord and every cluster process, plus
    the containerd shims and pause containers (the cluster is idle when nothing is deployed)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        pid = int(status.parent.name)
        children.setdefault(int(re.search(r"PPid:\s+(\d+)", text).group(1)), []).append(pid)
        found = re.search(r"VmRSS:\s+(\d+)", text)
        rss[pid] = int(found.group(1)) if found else 0
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total
