"""GET /invoices under a bounded loopback load (wrk), next to a minimal Bottle-on-waitress
handler returning the same bytes, measured the same way."""

import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from tests.bench.pay import seed
from tests.support import PostgresServer, ServiceProcess, free_port, http, wait_until

WRK = ["-t2", "-c16", "-d10s", "--latency"]
PAGE = "/invoices?limit=100"


def wrk(url: str) -> dict:
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is missing: `make setup` installs it")
    output = subprocess.run(["wrk", *WRK, url], capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    rps = float(re.search(r"Requests/sec:\s+(\S+)", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "requests_per_second": round(rps),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s)", value).groups()
    return round(float(number) * {"us": 0.001, "ms": 1, "s": 1000}[unit], 3)


def invoice_app_reads(pg: PostgresServer, logs: Path) -> tuple[dict, bytes]:
    database = pg.create_database(f"bench_reads_{uuid.uuid4().hex[:6]}")
    app = ServiceProcess(
        "invoice_app", {"DATABASE_URL": database, "LOG_LEVEL": "WARNING"}, logs / "bench-reads.log"
    ).start()
    try:
        seed(database, 1000)
        body = _raw(f"{app.url}{PAGE}")
        return wrk(f"{app.url}{PAGE}"), body
    finally:
        app.kill()


def minimal_reads(body: bytes, logs: Path) -> dict:
    """The floor: Bottle on waitress, same threads, answering the same bytes from memory."""
    payload = logs / "bench-minimal-body.json"
    payload.write_bytes(body)
    port = free_port()
    script = textwrap.dedent(
        f"""
        import bottle, waitress
        body = open({str(payload)!r}, "rb").read()
        app = bottle.Bottle()
        @app.get("/invoices")
        def invoices():
            bottle.response.content_type = "application/json"
            return body
        waitress.serve(app, host="127.0.0.1", port={port}, threads=8, _quiet=True)
        """
    )
    with (logs / "bench-minimal.log").open("ab") as log:
        server = subprocess.Popen([sys.executable, "-c", script], stdout=log, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}{PAGE}"
        wait_until(lambda: http("GET", url).status == 200, 20, "the minimal server")
        return wrk(url)
    finally:
        server.kill()
        server.wait()


def _raw(url: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()
