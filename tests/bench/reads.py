"""GET /invoices?limit=100 under a bounded loopback load (wrk), next to its floor: the same
query through the same pool, encoded the same way, by a bare WSGI handler on the same waitress
server (tests/bench/reads_floor.py), measured the same way. Both must answer the same bytes,
and every request of both runs must get a 2xx."""

import os
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
PYTHONPATH = f"{SERVICES}:{REPO}"  # the services, and the floor's module


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


ROUNDS = 3
WARM_UP = 200


def reads_versus_floor(pg: PostgresServer, logs: Path) -> dict:
    """invoice-app and the floor on one database seeded with 1,000 invoices, measured in
    turns (ROUNDS each, alternating, so load from elsewhere on the machine falls on both alike;
    the best round of each counts). Every round first checks the page: invoice-app's holds 100
    invoices, and the floor's is the same bytes with the same Content-Type."""
    database = pg.create_database(f"bench_reads_{uuid.uuid4().hex[:6]}")
    seed(database, 1000)
    reference: dict = {}
    samples: dict[str, list[dict]] = {"invoice_app": [], "floor": []}
    for _ in range(ROUNDS):
        for name, module in (("invoice_app", "invoice_app"), ("floor", "tests.bench.reads_floor")):
            server = ServiceProcess(
                module,
                {"DATABASE_URL": database, "LOG_LEVEL": "WARNING", "PYTHONPATH": PYTHONPATH},
                logs / f"bench-reads-{name}.log",
            ).start(wait_ready=False)
            try:
                samples[name].append(_measure(server, name, reference))
            finally:
                server.kill()
    ours, floor = (max(samples[n], key=lambda f: f["requests_per_second"]) for n in samples)
    return {
        "invoice_app": ours,
        "floor": floor,
        "ratio": round(ours["requests_per_second"] / floor["requests_per_second"], 2),
        "rounds": samples,
    }


def _measure(server: ServiceProcess, name: str, reference: dict) -> dict:
    what = f"reads: {name}"
    url = f"{server.url}{PAGE}"
    wait_until(lambda: http("GET", url).status == 200, 30, f"{what} on {url}")
    page = _page(url)
    if not reference:  # invoice-app's, the first served
        check(
            page["body"].count(b'"InvoiceId"') == 100,
            f"{what}: the page does not hold 100 invoices: {page['body'][:200]!r}",
        )
        reference.update(page)
    check(
        page["body"] == reference["body"],
        f"{what}: the body differs from invoice-app's, so it does not do the same work:"
        f" {_difference(reference['body'], page['body'])}",
    )
    check(
        page["content_type"] == reference["content_type"],
        f"{what}: Content-Type {page['content_type']!r}, invoice-app's is"
        f" {reference['content_type']!r}",
    )
    for _ in range(WARM_UP):  # unmeasured: the first reads after seeding set hint bits
        http("GET", url)
    cpu = _cpu_seconds(server)
    figures = wrk(url, what)
    if cpu is not None:
        # The server's own CPU per request: what load from elsewhere on the machine moves least.
        spent = _cpu_seconds(server) - cpu
        figures["server_cpu_ms_per_request"] = round(spent * 1000 / figures["requests"], 3)
    return figures


def _cpu_seconds(server: ServiceProcess) -> float | None:
    """User plus system CPU of the server process, where /proc tells (Linux)."""
    try:
        stat = Path(f"/proc/{server.process.pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
