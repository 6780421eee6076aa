"""`make bench`: prints one table and writes out/bench.json. Load goes to 127.0.0.1 only,
is bounded in count and time, and stops by itself.

    python -m tests.bench [pay] [reads]     (default: every section)
"""

import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from tests.bench import pay, reads
from tests.support import REPO, running_postgres

INVOICES = 10_000


def main(sections: list[str]) -> int:
    sections = sections or ["pay", "reads"]
    results: dict = {
        "machine": f"{platform.node()} {platform.machine()}, {_cpus()} CPUs",
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
            ours, body = reads.invoice_app_reads(pg, logs)
            base = reads.minimal_reads(body, logs)
            ratio = ours["requests_per_second"] / base["requests_per_second"]
            results["reads"] = {"invoice_app": ours, "floor": base, "ratio": round(ratio, 2)}
            rows.append(
                (f"GET {reads.PAGE}", _latency(ours), _latency(base), f"{ratio:.0%} of floor rps")
            )
    _print_table(rows)
    out = REPO / "out"
    out.mkdir(exist_ok=True)
    (out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten: {out / 'bench.json'} (service logs: {logs})")
    return 0


def _latency(figures: dict) -> str:
    return (
        f"{figures['requests_per_second']} rps, p50 {figures['p50_ms']} ms, "
        f"p99 {figures['p99_ms']} ms"
    )


def _print_table(rows: list[tuple[str, str, str, str]]) -> None:
    header = ("measure", "platform", "floor", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print()
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
