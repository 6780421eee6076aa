"""Pay runs that cannot hang a pod: against a slow provider, /healthz keeps answering, the
run stops at its deadline, and nothing is charged twice; the CronJob's CLI takes the same
path, and the breaker stops a run against a provider that does not answer."""

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.integration.conftest import TOKEN, Starter, provider_summary, seed
from tests.support import SERVICES, ServiceProcess, free_port, http

FORWARDED = ("Authorization", "Idempotency-Key", "Content-Type")


@contextmanager
def slow_proxy(target: str, delay: float) -> Iterator[str]:
    """The real provider behind a proxy that answers each request `delay` seconds late."""

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(delay)
            headers = {h: self.headers[h] for h in FORWARDED if self.headers[h]}
            request = urllib.request.Request(target + self.path, body, headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    status, payload = answer.status, answer.read()
            except urllib.error.HTTPError as error:
                status, payload = error.code, error.read()
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_slow_provider_with_two_threads_keeps_healthz_up_and_stops_at_the_deadline(
    start: Starter, database_url: str, provider: ServiceProcess
) -> None:
    with slow_proxy(provider.url, delay=1.0) as slow_url:
        app = start(
            "invoice_app",
            database_url=database_url,
            payment_provider_url=slow_url,
            payment_provider_token=TOKEN,
            threads="2",
            pay_concurrency="2",
            pay_batch_size="4",
            pay_run_deadline_seconds="3",
        )
        seed(database_url, 40, prefix="P")
        replies: list = []

        def pay() -> None:
            replies.append(http("POST", f"{app.url}/invoices/pay", timeout=60))

        callers = [threading.Thread(target=pay) for _ in range(3)]
        started = time.monotonic()
        for caller in callers:
            caller.start()
        probes = []
        while any(caller.is_alive() for caller in callers):
            # The liveness probe's own timeout: a probe that waits longer fails the pod.
            probes.append(http("GET", f"{app.url}/healthz", timeout=1).status)
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        metrics = http("GET", f"{app.metrics_url}/metrics").body

    assert len(probes) >= 10, "probes ran while the pay run was in flight"
    assert set(probes) == {200}
    statuses = sorted(reply.status for reply in replies)
    assert statuses[0] == 200
    assert set(statuses[1:]) <= {200, 429}, "extra callers join the run or are told to wait"
    report = next(reply.body for reply in replies if reply.status == 200)
    assert report["stopped"] == "deadline"
    assert 0 < report["paidCount"] < 43
    assert elapsed < 3 + 2 * 1.0 + 2, f"the run took {elapsed:.1f}s past a 3s deadline"
    assert 'invoice_pay_runs_total{outcome="deadline"} 1.0' in metrics

    # A replica with a fast path to the provider finishes the work: nothing twice.
    fast = start(
        "invoice_app",
        database_url=database_url,
        payment_provider_url=provider.url,
        payment_provider_token=TOKEN,
    )
    assert http("POST", f"{fast.url}/invoices/pay", timeout=60).body["stopped"] == "complete"
    assert all(i["IsPaid"] for i in http("GET", f"{fast.url}/invoices").body)
    assert provider_summary(provider) == {"charged": 43, "declined": 0, "chargedTwice": []}


def run_cli(database_url: str, **env: str) -> tuple[int, dict]:
    result = subprocess.run(
        [sys.executable, "-m", "invoice_app", "pay"],
        env={
            "PYTHONPATH": str(SERVICES),
            "DATABASE_URL": database_url,
            "LOG_LEVEL": "WARNING",
            **{k.upper(): v for k, v in env.items()},
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1])


def test_the_cronjob_cli_pays_everything_through_the_same_path(
    database_url: str, provider: ServiceProcess
) -> None:
    seed(database_url, 10, prefix="P")
    code, report = run_cli(
        database_url, payment_provider_url=provider.url, payment_provider_token=TOKEN
    )
    assert (code, report["paidCount"], report["stopped"]) == (0, 13, "complete")
    assert provider_summary(provider)["charged"] == 13
    code, report = run_cli(
        database_url, payment_provider_url=provider.url, payment_provider_token=TOKEN
    )
    assert (code, report["paidCount"]) == (0, 0)


def test_the_breaker_stops_a_run_against_a_provider_that_does_not_answer(
    database_url: str,
) -> None:
    seed(database_url, 20, prefix="P")
    code, report = run_cli(
        database_url,
        payment_provider_url=f"http://127.0.0.1:{free_port()}",
        payment_max_retries="0",
        pay_concurrency="1",
        pay_breaker_threshold="3",
    )
    assert (code, report["stopped"]) == (1, "breaker")
    outcomes = [u["Outcome"] for u in report["unpaid"]]
    assert outcomes.count("unknown") == 3
    assert report["unpaidCount"] == len(outcomes)
