"""Bad input gets a 4xx with a clear message, never a 5xx; shutdown is graceful."""

import json
import socket
import sqlite3
import time
from http.client import HTTPConnection
from pathlib import Path

import pytest

from tests.integration.conftest import AUTH as PROVIDER_AUTH
from tests.integration.conftest import Starter, provider_summary, refused_start_log
from tests.support import ServiceProcess, http, wait_until

AUTH = {**PROVIDER_AUTH, "Content-Type": "application/json"}


EMPTY = "empty body request"


class _AnyText(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)

    __hash__ = str.__hash__


ANY_DETAIL = _AnyText()
BAD = "failed to process payment request parameters"


@pytest.mark.parametrize(
    ("body", "error", "detail"),
    [
        (b"", EMPTY, "request body"),
        (b"  ", EMPTY, "request body"),
        (b"{not json", BAD, "Invalid JSON"),
        (b"[" * 5000, BAD, "nested too deeply"),
        (b"[1, 2]", BAD, "must be a JSON object"),
        (b"{}", "could not retrieve payment id", "'id'"),
        (b'{"id": "", "value": 5, "currency": "EUR"}', "could not retrieve payment id", "'id'"),
        (b'{"id": "I1", "currency": "EUR"}', "could not retrieve payment value", "'value'"),
        (b'{"id": "I1", "value": 0, "currency": "EUR"}', "could not retrieve payment value", ""),
        (b'{"id": "I1", "value": 5}', "could not retrieve payment currency", "'currency'"),
        (b'{"id": 7, "value": 5, "currency": "EUR"}', BAD, "'id' must be a string"),
        (b'{"id": "I1", "value": "5", "currency": "EUR"}', BAD, "'value' must be a number"),
        (b'{"id": "I1", "value": true, "currency": "EUR"}', BAD, "'value' must be a number"),
        (b'{"id": "I1", "value": -3, "currency": "EUR"}', BAD, "positive amount"),
        (b'{"id": "I1", "value": 1.001, "currency": "EUR"}', BAD, "at most 2 decimals"),
        (b'{"id": "I1", "value": 1e400, "currency": "EUR"}', BAD, "positive amount"),
        (b'{"id": "I1", "value": 5, "currency": "EURO"}', BAD, "ISO 4217"),
        ('{"id": "I1", "value": 5, "currency": "\u00c9UR"}'.encode(), BAD, "ISO 4217"),
        (b"\xff\xfe", BAD, "Invalid JSON"),
    ],
)
def test_malformed_charge_requests_get_the_original_providers_400_texts(
    provider: ServiceProcess, body: bytes, error: str, detail: str
) -> None:
    reply = http("POST", f"{provider.url}/payments/pay", body, AUTH)
    assert reply.status == 400
    assert reply.body["error"] == error
    assert detail in reply.body["detail"]
    assert provider_summary(provider)["charged"] == 0


def test_amounts_are_one_payment_however_many_decimals_they_are_written_with(
    provider: ServiceProcess,
) -> None:
    headers = {**AUTH, "Idempotency-Key": "same-amount"}
    answers = [
        http(
            "POST",
            f"{provider.url}/payments/pay",
            f'{{"id":"D","value":{v},"currency":"EUR"}}',
            headers,
        )
        for v in ("10", "10.0", "10.00")
    ]
    assert [a.status for a in answers] == [200, 200, 200]
    assert len({a.body["transactionId"] for a in answers}) == 1
    assert provider_summary(provider)["charged"] == 1


def test_oversized_bodies_get_413_from_both_services(
    provider: ServiceProcess, invoice_app: ServiceProcess
) -> None:
    huge = json.dumps({"id": "I1", "value": 1, "currency": "EUR", "pad": "x" * 200_000})
    for url in (f"{provider.url}/payments/pay", f"{invoice_app.url}/invoices/pay"):
        reply = http("POST", url, huge, AUTH)
        assert reply.status == 413, url
    assert provider_summary(provider)["charged"] == 0


def test_same_idempotency_key_replays_the_answer_without_charging_again(
    provider: ServiceProcess,
) -> None:
    charge = {"id": "X1", "value": 9.99, "currency": "EUR"}
    headers = {**AUTH, "Idempotency-Key": "k-1"}
    first = http("POST", f"{provider.url}/payments/pay", charge, headers)
    again = http("POST", f"{provider.url}/payments/pay", charge, headers)

    assert first.status == again.status == 200
    assert again.body == first.body
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert provider_summary(provider)["charged"] == 1
    reused = http("POST", f"{provider.url}/payments/pay", {**charge, "value": 1}, headers)
    assert reused.status == 409
    assert "different payment" in reused.body["error"]
    listed = http("GET", f"{provider.url}/payments?id=X1", headers=AUTH).body
    assert [p["transactionId"] for p in listed] == [first.body["transactionId"]]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nope", 404),
        ("GET", "/invoices/does-not-exist", 404),
        ("DELETE", "/invoices", 405),
        ("GET", "/invoices?limit=0", 400),
        ("GET", "/invoices?limit=abc", 400),
        ("GET", "/rest/v1/invoices?limit=100000", 400),
        ("GET", "/invoices/" + "x" * 5000, 404),
    ],
)
def test_unknown_routes_and_bad_queries_get_4xx(
    invoice_app: ServiceProcess, method: str, path: str, status: int
) -> None:
    reply = http(method, f"{invoice_app.url}{path}")
    assert reply.status == status
    assert reply.body["error"]


def test_pay_ignores_a_body_as_the_original_did(invoice_app: ServiceProcess) -> None:
    reply = http("POST", f"{invoice_app.url}/invoices/pay", b"{garbage", AUTH)
    assert reply.status == 200
    assert len(reply.body["paid"]) == 3


def test_pagination_walks_every_invoice(invoice_app: ServiceProcess) -> None:
    first = http("GET", f"{invoice_app.url}/invoices?limit=2").body
    rest = http("GET", f"{invoice_app.url}/invoices?limit=2&after={first[-1]['InvoiceId']}").body
    assert [i["InvoiceId"] for i in first + rest] == ["I1", "I2", "I3"]


def metric(text: str, name: str) -> float:
    """The value of an unlabelled (or fully spelled-out) sample in Prometheus text."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in the metrics")


def test_metrics_count_requests_payments_runs_and_the_backlog(
    invoice_app: ServiceProcess, provider: ServiceProcess
) -> None:
    before = http("GET", f"{invoice_app.metrics_url}/metrics").body
    assert metric(before, "invoices_pending") == 3
    assert metric(before, "invoices_oldest_pending_age_seconds") > 0
    http("POST", f"{invoice_app.url}/invoices/pay")
    app_metrics = http("GET", f"{invoice_app.metrics_url}/metrics").body
    assert metric(app_metrics, 'invoice_payments_total{outcome="paid"}') == 3
    assert metric(app_metrics, 'invoice_pay_runs_total{outcome="complete"}') == 1
    assert (
        metric(app_metrics, 'http_requests_total{method="POST",route="/invoices/pay",status="200"}')
        == 1
    )
    assert metric(app_metrics, "invoices_pending") == 0
    assert metric(app_metrics, "invoices_oldest_pending_age_seconds") == 0
    provider_metrics = http("GET", f"{provider.metrics_url}/metrics").body
    assert metric(provider_metrics, 'payments_total{outcome="charged"}') == 3
    for text in (app_metrics, provider_metrics):
        assert metric(text, "process_resident_memory_bytes") > 0
        assert "python_info{" in text
        assert metric(text, "db_pool_max") == 8
        assert metric(text, "db_pool_size") >= 1


def test_metrics_are_served_only_on_their_own_port(
    invoice_app: ServiceProcess, provider: ServiceProcess
) -> None:
    for service in (invoice_app, provider):
        assert http("GET", f"{service.url}/metrics").status == 404
        assert "http_requests_total" in http("GET", f"{service.metrics_url}/metrics").body


def test_sigterm_reports_not_ready_then_exits_zero(start: Starter, database_url: str) -> None:
    app = start("invoice_app", database_url=database_url, shutdown_drain_seconds="2")
    # An idle keep-alive connection must not hold the shutdown up.
    idle = socket.create_connection(("127.0.0.1", app.port))
    assert app.process is not None
    started = time.monotonic()
    app.process.terminate()
    wait_until(lambda: http("GET", f"{app.url}/readyz").status == 503, 5, "not-ready")
    assert http("GET", f"{app.url}/invoices").status == 200, "still serving while draining"

    assert app.process.wait(30) == 0
    assert time.monotonic() - started >= 2
    idle.close()


@pytest.mark.parametrize(
    ("module", "env", "line"),
    [
        (
            "payment_provider",
            {"FAILURE_RATE": "2", "PAYMENT_PROVIDER_TOKEN": "t"},
            "FAILURE_RATE must be a finite number",
        ),
        (
            "payment_provider",
            {"PAYMENT_PROVIDER_TOKEN": ""},
            "PAYMENT_PROVIDER_TOKEN is empty: set it, or set PAYMENT_PROVIDER_ALLOW_NO_TOKEN=true",
        ),
        ("invoice_app", {"PAYMENT_TIMEOUT_SECONDS": "inf"}, "PAYMENT_TIMEOUT_SECONDS must be"),
        ("invoice_app", {"PAYMENT_TIMEOUT_SECONDS": "0"}, "PAYMENT_TIMEOUT_SECONDS must be"),
        (
            "invoice_app",
            {"THREADS": "8", "DATABASE_POOL_SIZE": "2"},
            "DATABASE_POOL_SIZE must be at least THREADS (8), got 2",
        ),
        (
            "payment_provider",
            {"DATABASE_URL": "mysql://app:s3cret@db/x"},
            "DATABASE_URL must start with sqlite:/// or postgresql://",
        ),
    ],
)
def test_bad_configuration_fails_fast_with_one_line_naming_the_variable(
    tmp_path: Path, module: str, env: dict, line: str
) -> None:
    output = refused_start_log(tmp_path / "bad.log", module, env).strip()
    assert line in output
    assert len(output.splitlines()) == 1, output
    assert "Traceback" not in output
    assert "s3cret" not in output


@pytest.mark.parametrize(
    "path",
    [
        "/invoices?limit=%B2",
        "/invoices?limit=%C2%B2",
        "/rest/v1/invoices?limit=%B2",
        "/rest/v1/invoices?after=%B2",
        "/invoices?after=%C3%A9",
        "/invoices?after=%E2%80%8B",
        "/invoices?after=%B2",
    ],
)
def test_non_ascii_numbers_and_cursors_get_400(invoice_app: ServiceProcess, path: str) -> None:
    reply = http("GET", f"{invoice_app.url}{path}")
    assert reply.status == 400, reply.body
    assert "after" in reply.body["error"] or "limit" in reply.body["error"]


def test_non_ascii_limit_on_the_ledger_gets_400(provider: ServiceProcess) -> None:
    reply = http("GET", f"{provider.url}/payments?limit=%B2", headers=AUTH)
    assert reply.status == 400
    assert "limit must be an integer" in reply.body["error"]


def test_unknown_http_methods_get_405_and_one_metric_label(invoice_app: ServiceProcess) -> None:
    for method in ("FOO", "BREW", "PROPFIND"):
        reply = http(method, f"{invoice_app.url}/invoices")
        assert reply.status == 405
        assert reply.body["error"]
    metrics = http("GET", f"{invoice_app.metrics_url}/metrics").body
    assert 'http_requests_total{method="OTHER",route="unmatched",status="405"} 3.0' in metrics
    assert "FOO" not in metrics
    assert "BREW" not in metrics


def send_chunked(port: int, path: str, body: bytes) -> tuple[int, dict]:
    connection = HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("POST", path)
    for name, value in {**AUTH, "Transfer-Encoding": "chunked"}.items():
        connection.putheader(name, value)
    connection.endheaders()
    chunks = [body[n : n + 4096] for n in range(0, len(body), 4096)]
    connection.send(b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n")
    reply = connection.getresponse()
    return reply.status, json.loads(reply.read())


def test_chunked_request_bodies_are_read_and_bounded_like_any_other(
    provider: ServiceProcess,
) -> None:
    """waitress de-chunks bodies before the app sees them (and answers an unknown
    Transfer-Encoding with its own 501, as RFC 9112 says): the same rules then apply."""
    url = "/payments/pay"
    assert send_chunked(provider.port, url, b"") == (
        400,
        {"error": "empty body request", "detail": ANY_DETAIL},
    )
    status, answer = send_chunked(provider.port, url, b"[" * 5000)
    assert (status, answer["error"]) == (400, BAD)
    status, answer = send_chunked(provider.port, url, b"[" + b" " * 200_000 + b"]")
    assert status == 413, answer
    status, answer = send_chunked(provider.port, url, b'{"id":"CH1","value":5,"currency":"EUR"}')
    assert (status, answer["id"]) == (200, "CH1")
    assert provider_summary(provider)["charged"] == 1


def test_sqlite_busy_beyond_the_timeout_is_a_503(start: Starter, tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    app = start("invoice_app", database_url=f"sqlite:///{path}", database_timeout_seconds="0.3")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        reply = http("POST", f"{app.url}/invoices/pay")
        assert reply.status == 503, reply.body
        assert "Database unavailable" in reply.body["error"]
    finally:
        writer.execute("ROLLBACK")
    assert http("POST", f"{app.url}/invoices/pay").status == 200
