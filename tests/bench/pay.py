"""Paying 10,000 invoices with both services as local processes, against the floor: the same
number of charges made straight at one payment-provider with the same concurrency."""

import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.support import SERVICES, PostgresServer, ServiceProcess, http

CONCURRENCY = 8


def seed(database_url: str, count: int) -> None:
    subprocess.run(
        [sys.executable, "-m", "invoice_app", "seed", str(count)],
        env={"PYTHONPATH": str(SERVICES), "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"},
        check=True,
    )


def pay_through_invoice_app(pg: PostgresServer, logs: Path, count: int) -> dict:
    provider = ServiceProcess(
        "payment_provider",
        {
            "DATABASE_URL": pg.create_database(f"bench_pp_{uuid.uuid4().hex[:6]}"),
            "LOG_LEVEL": "WARNING",
            "THREADS": "16",
            "PAYMENT_PROVIDER_ALLOW_NO_TOKEN": "true",
        },
        logs / "bench-payment-provider.log",
    ).start()
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
        if reply.status != 200 or reply.body["paidCount"] != count:
            raise RuntimeError(f"pay run did not pay all {count}: {reply.status}")
        summary = http("GET", f"{provider.url}/payments/summary").body
        if summary["charged"] != count or summary["chargedTwice"]:
            raise RuntimeError(f"provider saw {summary}, expected {count} single charges")
    finally:
        app.kill()
        provider.kill()
    return {"invoices": count, "seconds": round(elapsed, 2), "per_second": round(count / elapsed)}


def floor(pg: PostgresServer, logs: Path, count: int) -> dict:
    provider = ServiceProcess(
        "payment_provider",
        {
            "DATABASE_URL": pg.create_database(f"bench_floor_{uuid.uuid4().hex[:6]}"),
            "LOG_LEVEL": "WARNING",
            "THREADS": "16",
            "PAYMENT_PROVIDER_ALLOW_NO_TOKEN": "true",
        },
        logs / "bench-floor-provider.log",
    ).start()
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=CONCURRENCY))
    url = f"{provider.url}/payments/pay"

    def charge(n: int) -> int:
        response = session.post(
            url,
            json={"id": f"F{n:06d}", "value": 12.15, "currency": "EUR"},
            headers={"Idempotency-Key": f"floor-{n}"},
            timeout=30,
        )
        return response.status_code

    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            statuses = list(pool.map(charge, range(count)))
        elapsed = time.perf_counter() - started
        if statuses.count(200) != count:
            raise RuntimeError(f"floor: only {statuses.count(200)} of {count} charges succeeded")
    finally:
        provider.kill()
    return {"charges": count, "seconds": round(elapsed, 2), "per_second": round(count / elapsed)}
