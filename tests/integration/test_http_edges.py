"""Bad input gets a 4xx with a clear message, never a 5xx; shutdown is graceful."""

import json
import socket
import time
from pathlib import Path

import pytest

from tests.integration.conftest import TOKEN, Starter
from tests.support import ServiceProcess, http, wait_until

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "Please send a request body"),
        (b"{not json", "Invalid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"{}", "Missing required field(s): id, value, currency"),
        (b'{"id": "I1", "value": 5}', "Missing required field(s): currency"),
        (b'{"id": 7, "value": 5, "currency": "EUR"}', "'id' must be a string"),
        (b'{"id": "I1", "value": "5", "currency": "EUR"}', "'value' must be a number"),
        (b'{"id": "I1", "value": true, "currency": "EUR"}', "'value' must be a number"),
        (b'{"id": "I1", "value": -3, "currency": "EUR"}', "positive amount"),
        (b'{"id": "I1", "value": 1.001, "currency": "EUR"}', "at most 2 decimals"),
        (b'{"id": "I1", "value": 1e400, "currency": "EUR"}', "positive amount"),
        (b'{"id": "I1", "value": 5, "currency": "EURO"}', "ISO 4217"),
        (b"\xff\xfe", "Invalid JSON"),
    ],
)
def test_malformed_charge_requests_get_400_with_a_clear_message(
    provider: ServiceProcess, body: bytes, message: str
) -> None:
    reply = http("POST", f"{provider.url}/payments/pay", body, AUTH)
    assert reply.status == 400
    assert message in reply.body["error"]
    assert http("GET", f"{provider.url}/payments/summary").body["charged"] == 0


def test_oversized_bodies_get_413_from_both_services(
    provider: ServiceProcess, invoice_app: ServiceProcess
) -> None:
    huge = json.dumps({"id": "I1", "value": 1, "currency": "EUR", "pad": "x" * 200_000})
    for url in (f"{provider.url}/payments/pay", f"{invoice_app.url}/invoices/pay"):
        reply = http("POST", url, huge, AUTH)
        assert reply.status == 413, url
    assert http("GET", f"{provider.url}/payments/summary").body["charged"] == 0


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
    assert http("GET", f"{provider.url}/payments/summary").body["charged"] == 1
    reused = http("POST", f"{provider.url}/payments/pay", {**charge, "value": 1}, headers)
    assert reused.status == 409
    assert "different payment" in reused.body["error"]
    listed = http("GET", f"{provider.url}/payments?id=X1").body
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


def test_metrics_count_requests_and_payments(
    invoice_app: ServiceProcess, provider: ServiceProcess
) -> None:
    http("POST", f"{invoice_app.url}/invoices/pay")
    app_metrics = http("GET", f"{invoice_app.url}/metrics").body
    assert 'invoice_payments_total{outcome="paid"} 3.0' in app_metrics
    assert 'http_requests_total{method="POST",route="/invoices/pay",status="200"} 1.0' in (
        app_metrics
    )
    assert 'payments_total{outcome="charged"} 3.0' in http("GET", f"{provider.url}/metrics").body


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


def test_bad_configuration_fails_fast_with_the_variable_named(tmp_path: Path) -> None:
    service = ServiceProcess("payment_provider", {"FAILURE_RATE": "2"}, tmp_path / "bad.log")
    service.start(wait_ready=False)
    assert service.process is not None
    assert service.process.wait(30) == 2
    assert "FAILURE_RATE must be between 0.0 and 1.0" in (tmp_path / "bad.log").read_text()
