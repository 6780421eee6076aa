"""GET /invoices?limit=100 under a bounded loopback load (wrk), next to its floor: the same
query through the same pool, encoded the same way, by a bare WSGI handler on the same waitress
server (tests/bench/reads_floor.py), measured the same way. Both must answer the same bytes,
and every request of both runs must get a 2xx."""

import re
import shutil
import subprocess
import urllib.request
import uuid
from pathlib import Path

from tests.bench.checks import check
from tests.bench.pay import seed
from tests.support import REPO, SERVICES, PostgresServer, ServiceProcess, http, wait_until

WRK = ["-t2", "-c16", "-d10s", "--latency"]
PAGE = "/invoices?limit=100"


def wrk(url: str, what: str) -> dict:
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is missing: `make setup` installs it")
    output = subprocess.run(
        ["wrk", *WRK, url], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    requests, rps = re.search(r"(\d+) requests in .*?Requests/sec:\s+(\S+)", output, re.S).groups()
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: (.*)", output)
    figures = {
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "requests": int(requests),
        "requests_per_second": round(float(rps)),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": sockets.group(1) if sockets else "",
    }
    check(
        figures["non_2xx"] == 0,
        f"{what}: {figures['non_2xx']} of {requests} responses were not 2xx under wrk",
    )
    check(not sockets, f"{what}: wrk saw socket errors: {figures['socket_errors']}")
    check(int(requests) > 0, f"{what}: wrk completed no request")
    return figures


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s)", value).groups()
    return round(float(number) * {"us": 0.001, "ms": 1, "s": 1000}[unit], 3)


def invoice_app_reads(pg: PostgresServer, logs: Path) -> tuple[dict, dict]:
    """invoice-app on a database seeded with 1,000 invoices; returns wrk's figures, and the
    database and the page as invoice-app answered it, for the floor."""
    database = pg.create_database(f"bench_reads_{uuid.uuid4().hex[:6]}")
    app = ServiceProcess(
        "invoice_app", {"DATABASE_URL": database, "LOG_LEVEL": "WARNING"}, logs / "bench-reads.log"
    ).start()
    try:
        seed(database, 1000)
        page = _page(f"{app.url}{PAGE}")
        check(page["status"] == 200, f"reads: invoice-app answered {page['status']}")
        check(
            page["body"].count(b'"InvoiceId"') == 100,
            f"reads: invoice-app's page does not hold 100 invoices: {page['body'][:200]!r}",
        )
        figures = wrk(f"{app.url}{PAGE}", "reads: invoice-app")
    finally:
        app.kill()
    return figures, {"database": database, **page}


def floor_reads(service: dict, logs: Path) -> dict:
    """The floor on the same database; it must answer exactly what invoice-app answered."""
    server = ServiceProcess(
        "tests.bench.reads_floor",
        {
            "DATABASE_URL": service["database"],
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": f"{SERVICES}:{REPO}",
        },
        logs / "bench-reads-floor.log",
    ).start(wait_ready=False)
    try:
        url = f"{server.url}{PAGE}"
        wait_until(lambda: http("GET", url).status == 200, 30, f"the reads floor on {url}")
        page = _page(url)
        check(
            page["body"] == service["body"],
            "reads: the floor's body differs from invoice-app's, so it does not do the same"
            f" work: {_difference(service['body'], page['body'])}",
        )
        check(
            page["content_type"] == service["content_type"],
            f"reads: the floor answers Content-Type {page['content_type']!r},"
            f" invoice-app {service['content_type']!r}",
        )
        return wrk(url, "reads: floor")
    finally:
        server.kill()


def _page(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return {
            "status": response.status,
            "body": response.read(),
            "content_type": response.headers.get("Content-Type"),
        }


def _difference(ours: bytes, floor: bytes) -> str:
    at = next(
        (i for i, (a, b) in enumerate(zip(ours, floor, strict=False)) if a != b),
        min(len(ours), len(floor)),
    )
    start = max(0, at - 40)
    return (
        f"{len(ours)} bytes against {len(floor)}, first difference at byte {at}:\n"
        f"  invoice-app: ...{ours[start : at + 60]!r}...\n"
        f"  floor:       ...{floor[start : at + 60]!r}..."
    )
