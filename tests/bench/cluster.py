"""Benchmarks on the local cluster: deploy against the kubectl floor, the idempotent re-run,
paying through the Ingress against the provider's floor, images, and the cluster itself."""

import json
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests.ansible.conftest import playbook
from tests.cluster.conftest import KUBECONFIG, KUBECTL, kubectl
from tests.e2e.conftest import in_invoice_app, public, seed

WORKLOADS = [
    ("invoices", "statefulset/invoices-db"),
    ("payments", "statefulset/payments-db"),
    ("payments", "deployment/payment-provider"),
    ("invoices", "deployment/invoice-app"),
]
RECAP = re.compile(r"^localhost\s+: ok=(\d+)\s+changed=(\d+)", re.M)
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
        ok, changed = map(int, RECAP.findall(output)[-1])
        samples.append((seconds, ok, changed))
    return {
        "median_seconds": round(statistics.median(s[0] for s in samples), 1),
        "tasks_ok": samples[-1][1],
        "changed": max(s[2] for s in samples),
        "runs": runs,
    }


FLOOR_SCRIPT = """
import json, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
count, concurrency, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
url = "http://payment-provider.payments.svc.cluster.local:8082/payments/pay"
def charge(n):
    body = json.dumps({"id": f"FLOOR-{n:06d}", "value": 12.15, "currency": "EUR"}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "Authorization": "Bearer " + token,
        "Idempotency-Key": f"floor-{time.time_ns()}-{n}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status
started = time.perf_counter()
with ThreadPoolExecutor(concurrency) as pool:
    ok = sum(status == 200 for status in pool.map(charge, range(count)))
print(json.dumps({"ok": ok, "seconds": time.perf_counter() - started}))
"""


def pay_through_the_ingress(count: int = 10_000) -> dict:
    public("POST", "/invoices/pay", timeout=600)  # nothing left over from earlier runs
    seed(count)
    started = time.perf_counter()
    reply = public("POST", "/invoices/pay", timeout=900)
    seconds = time.perf_counter() - started
    paid = len(reply.body["paid"])
    token = in_invoice_app("-c", "import os; print(os.environ['PAYMENT_PROVIDER_TOKEN'])").strip()
    floor = json.loads(in_invoice_app("-c", FLOOR_SCRIPT, str(count), "8", token, timeout=900))
    ours = paid / seconds
    base = floor["ok"] / floor["seconds"]
    return {
        "invoices": paid,
        "seconds": round(seconds, 1),
        "per_second": round(ours),
        "floor_per_second": round(base),
        "ratio": round(ours / base, 2),
    }


def images() -> dict:
    sizes = {}
    for line in subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines():
        name, size = line.split(" ", 1)
        if name.startswith("invoicing-platform/"):
            sizes[name.split("/", 1)[1].split(":")[0]] = size
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
    playbook("playbooks/images.yml")
    return {
        "kubernetes_cold_compile_seconds": int(build.read_text()) if build else None,
        "rerun_cluster_playbook_seconds": round(rerun, 1),
        "teardown_seconds": round(teardown, 1),
        "warm_bring_up_seconds": round(warm, 1),
        "idle_host_processes_rss_mib": rss_mib,
    }


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
