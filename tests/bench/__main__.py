"""`make bench`: prints one table and writes out/bench.json. Load goes to 127.0.0.1 only,
is bounded in count and time, and stops by itself.

    python -m tests.bench [pay] [reads] [images] [cluster] [deploy] [rerun] [pay-cluster]
    (default: every section; the last five need the deployed platform on the local cluster)
"""

import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from tests.bench import cluster, pay, reads, report
from tests.bench.checks import BenchFailure
from tests.support import REPO, running_postgres

INVOICES = 10_000


def main(sections: list[str]) -> int:
    try:
        return _run(sections)
    except BenchFailure as failure:
        # A wrong run has no figure: nothing is printed as measured, nothing is written.
        print(f"\nbench FAILED, no figures printed or written: {failure}", file=sys.stderr)
        return 1


def _run(sections: list[str]) -> int:
    sections = sections or ["pay", "reads", "images", "cluster", "deploy", "rerun", "pay-cluster"]
    results: dict = {
        "machine": f"{platform.node()} ({platform.machine()}, {_cpus()} CPUs, {_memory_gib()} GiB)",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    logs = Path(tempfile.mkdtemp(prefix="invoicing-bench-"))
    rows: list[tuple[str, str, str, str]] = []
    with running_postgres() as pg:
        if "pay" in sections:
            print(f"==> paying {INVOICES} invoices through invoice-app, then the floor", flush=True)
            ours = pay.pay_through_invoice_app(pg, logs, INVOICES)
            base = pay.floor(pg, logs, INVOICES)
            ratio = ours["per_second"] / base["per_second"]
            results["pay_local"] = {"invoice_app": ours, "floor": base, "ratio": round(ratio, 2)}
            rows.append(
                (
                    "pay 10k, local processes",
                    f"{ours['per_second']}/s",
                    f"{base['per_second']}/s",
                    f"{ratio:.0%} (goal >= 80%)",
                )
            )
        if "reads" in sections:
            print(f"==> wrk {' '.join(reads.WRK)} on GET {reads.PAGE}, then the floor", flush=True)
            figures = results["reads"] = reads.reads_versus_floor(pg, logs)
            ours, base, ratio = figures["invoice_app"], figures["floor"], figures["ratio"]
            rows.append(
                (f"GET {reads.PAGE}", _latency(ours), _latency(base), f"{ratio:.0%} of floor rps")
            )
    rows += _cluster_sections(sections, results)
    _print_table(rows)
    out = REPO / "out"
    out.mkdir(exist_ok=True)
    (out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    doc = REPO / "docs" / "performance.md"
    report.write_latest(
        doc, report.markdown_table(rows, results["when"], results["machine"], sections)
    )
    print(f"\nwritten: {out / 'bench.json'}, the table in {doc} (service logs: {logs})")
    return 0


def _cluster_sections(sections: list[str], results: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    if "images" in sections:
        print("==> images: sizes, and a rebuild with nothing changed", flush=True)
        figures = results["images"] = cluster.images()
        sizes = ", ".join(f"{name} {size}" for name, size in sorted(figures["sizes"].items()))
        rows.append(("image sizes", sizes, "", "goal: services <= 60 MB, PostgreSQL <= 150 MB"))
        rows.append(
            (
                "images.yml, nothing changed",
                f"{figures['no_change_rebuild_seconds']} s",
                "",
                "goal <= 3 s in all",
            )
        )
    if "cluster" in sections:
        print("==> local cluster: rerun, teardown, warm bring-up, idle memory", flush=True)
        figures = results["local_cluster"] = cluster.local_cluster()
        rows.append(
            ("Kubernetes cold compile", f"{figures['kubernetes_cold_compile_seconds']} s", "", "")
        )
        for label, key, goal in (
            ("cluster.yml on a healthy cluster", "rerun_cluster_playbook_seconds", ""),
            ("teardown", "teardown_seconds", "goal <= 15 s"),
            ("bring-up from the warm cache", "warm_bring_up_seconds", "goal <= 20 s"),
            ("three nodes from the warm cache", "three_node_warm_bring_up_seconds", "goal <= 60 s"),
        ):
            rows.append((label, f"{figures[key]} s", "", goal))
        rows.append(("idle cluster RSS", f"{figures['idle_host_processes_rss_mib']} MiB", "", ""))
    if "deploy" in sections:
        print("==> deploy.yml from no namespaces, then kubectl apply + rollout status", flush=True)
        figures = results["deploy"] = cluster.deploy_versus_floor()
        rows.append(
            (
                "cold deploy",
                f"{figures['ansible_seconds']} s",
                f"{figures['floor_seconds']} s",
                f"{figures['ratio']}x (goal <= 1.3x)",
            )
        )
    if "rerun" in sections:
        print("==> site.yml with everything in place, 3 runs", flush=True)
        figures = results["idempotent_rerun"] = cluster.idempotent_rerun()
        rows.append(
            (
                "site.yml re-run (median)",
                f"{figures['median_seconds']} s",
                f"{figures['tasks_ok']} tasks, changed={figures['changed']}",
                "goal <= 12 s, changed=0",
            )
        )
    if "pay-cluster" in sections:
        print("==> paying 10,000 invoices through the Ingress, then the provider floor", flush=True)
        figures = results["pay_cluster"] = cluster.pay_through_the_ingress()
        rows.append(
            (
                "pay 10k, cluster via Ingress",
                f"{figures['per_second']}/s",
                f"{figures['floor_per_second']}/s",
                f"{figures['ratio']:.0%} (goal >= 80%)",
            )
        )
    return rows


def _latency(figures: dict) -> str:
    cpu = figures.get("server_cpu_ms_per_request")
    return (
        f"{figures['requests_per_second']} rps, p50 {figures['p50_ms']} ms, "
        f"p99 {figures['p99_ms']} ms" + (f", {cpu} ms CPU/request" if cpu else "")
    )


def _print_table(rows: list[tuple[str, str, str, str]]) -> None:
    header = ("measure", "platform", "floor", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print()
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def _memory_gib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 2**20)
    return 0


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
