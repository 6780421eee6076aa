"""Paying 10,000 invoices with both services as local processes, against the floor: the same
charges (payload, idempotency keys, ledger rows) made straight at one payment-provider over the
same number of persistent connections, by the lightest client there is (tests/bench/
floor_charges.py). Each run must pay everything exactly once, with nothing but 200s."""

import json
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

from tests.bench.checks import (
    check,
    check_all_paid,
    check_ledger,
    check_only_200s,
    check_pay_report,
    provider_statuses,
)
from tests.support import SERVICES, PostgresServer, ServiceProcess, http

CONCURRENCY = 8
FLOOR_CHARGES = Path(__file__).with_name("floor_charges.py")


def seed(database_url: str, count: int) -> None:
    subprocess.run(
        [sys.executable, "-m", "invoice_app", "seed", str(count)],
        env={"PYTHONPATH": str(SERVICES), "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"},
        check=True,
    )


def _provider(pg: PostgresServer, logs: Path, name: str) -> ServiceProcess:
    return ServiceProcess(
        "payment_provider",
        {
            "DATABASE_URL": pg.create_database(f"bench_{name}_{uuid.uuid4().hex[:6]}"),
            "LOG_LEVEL": "WARNING",
            "THREADS": "16",
            "PAYMENT_PROVIDER_ALLOW_NO_TOKEN": "true",
        },
        logs / f"bench-{name}.log",
    ).start()


def pay_through_invoice_app(pg: PostgresServer, logs: Path, count: int) -> dict:
    what = "pay, local: invoice-app"
    provider = _provider(pg, logs, "pp")
    database = pg.create_database(f"bench_ia_{uuid.uuid4().hex[:6]}")
    app = ServiceProcess(
        "invoice_app",
        {
            "DATABASE_URL": database,
            "PAYMENT_PROVIDER_URL": provider.url,
            "LOG_LEVEL": "WARNING",
            "PAY_CONCURRENCY": str(CONCURRENCY),
            "PAY_RUN_DEADLINE_SECONDS": "600",  # one run for the whole measured batch
        },
        logs / "bench-invoice-app.log",
    ).start()
    try:
        seed(database, count - 3)  # plus the three seeded originals
        started = time.perf_counter()
        reply = http("POST", f"{app.url}/invoices/pay", timeout=600)
        elapsed = time.perf_counter() - started
        check_pay_report(reply, count, what)
        listed = check_all_paid(
            lambda after: http(
                "GET", f"{app.url}/invoices?limit=1000&after={urllib.parse.quote(after)}"
            ),
            what,
        )
        check(listed == count, f"{what}: GET /invoices lists {listed} invoices, seeded {count}")
        check_ledger(http("GET", f"{provider.url}/payments/summary").body, count, what)
        check_only_200s(provider_statuses(provider.metrics_url), count, what)
    finally:
        app.kill()
        provider.kill()
    return {"invoices": count, "seconds": round(elapsed, 2), "per_second": round(count / elapsed)}


def floor(pg: PostgresServer, logs: Path, count: int) -> dict:
    what = "pay, local: floor"
    provider = _provider(pg, logs, "floor")
    try:
        result = floor_charges(provider.url, count, CONCURRENCY)
        check_floor(result, count, what)
        check_ledger(http("GET", f"{provider.url}/payments/summary").body, count, what)
        check_only_200s(provider_statuses(provider.metrics_url), count, what)
    finally:
        provider.kill()
    seconds = result["seconds"]
    return {"charges": count, "seconds": round(seconds, 2), "per_second": round(count / seconds)}


def floor_charges(url: str, count: int, concurrency: int) -> dict:
    command = [sys.executable, str(FLOOR_CHARGES), str(count), f"F{uuid.uuid4().hex[:6]}"]
    command += ["--concurrency", str(concurrency), "--url", url]
    output = subprocess.run(
        command,
        env={"PAYMENT_PROVIDER_TOKEN": ""},
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    return json.loads(output)


def check_floor(result: dict, count: int, what: str) -> None:
    """Every charge the floor made got a 200 naming its payment, over the concurrency asked."""
    check(
        result["statuses"] == {"200": count} and result["confirmed"] == count,
        f"{what}: {result['confirmed']} of {count} charges confirmed; statuses"
        f" {result['statuses']}",
    )
