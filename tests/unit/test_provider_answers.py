"""How invoice-app reads the provider's answers, and how its client retries."""

import http.server
import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from invoice_app.config import provider_base_url
from invoice_app.domain import Invoice, Outcome, Status
from invoice_app.payments import PaymentProviderClient, interpret
from tests.support import free_port

INVOICE = Invoice("I1", "C1", Decimal("12.15"), "EUR", Status.PENDING)


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, {"id": "I1", "transactionId": "t-1"}, Outcome.CONFIRMED),
        (200, {"id": "I2", "transactionId": "t-1"}, Outcome.UNKNOWN),
        (200, {"id": "I1"}, Outcome.UNKNOWN),
        (200, {"id": "I1", "transactionId": ""}, Outcome.UNKNOWN),
        (200, None, Outcome.UNKNOWN),
        (200, ["I1"], Outcome.UNKNOWN),
        (402, {"error": "Payment declined"}, Outcome.DECLINED),
        (400, {"error": "Missing"}, Outcome.REJECTED),
        (401, {"error": "token"}, Outcome.REJECTED),
        (422, {"error": "reused"}, Outcome.REJECTED),
        (404, None, Outcome.UNKNOWN),
        (500, {"error": "x"}, Outcome.UNKNOWN),
        (503, None, Outcome.UNKNOWN),
    ],
)
def test_only_a_confirming_200_counts_as_paid(status: int, body: object, outcome: Outcome) -> None:
    assert interpret(INVOICE, status, body).outcome is outcome


class FlakyProvider(http.server.BaseHTTPRequestHandler):
    """Fails the first `failures` requests with 503, then confirms; records what it saw."""

    failures = 0
    retry_after: str | None = None
    seen: list[dict] = []  # noqa: RUF012 - reset per test by the fixture

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FlakyProvider.seen.append({"key": self.headers["Idempotency-Key"], **body})
        if len(FlakyProvider.seen) <= FlakyProvider.failures:
            self.send_response(503)
            if FlakyProvider.retry_after:
                self.send_header("Retry-After", FlakyProvider.retry_after)
            self.end_headers()
            return
        payload = json.dumps({"id": body["id"], "transactionId": "t-9"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky_provider() -> Iterator[str]:
    FlakyProvider.seen = []
    FlakyProvider.retry_after = None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), FlakyProvider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def client(url: str, retries: int) -> PaymentProviderClient:
    return PaymentProviderClient(
        url,
        token="t",
        timeout_seconds=2,
        max_retries=retries,
        backoff_seconds=0.01,
        backoff_max_seconds=0.05,
        pool_size=1,
    )


def test_5xx_is_retried_with_the_same_idempotency_key(flaky_provider: str) -> None:
    FlakyProvider.failures = 2
    result = client(flaky_provider, retries=3).charge(INVOICE)
    assert result.outcome is Outcome.CONFIRMED
    assert [s["key"] for s in FlakyProvider.seen] == ["invoice-I1-attempt-0"] * 3
    assert FlakyProvider.seen[0] == {
        "key": "invoice-I1-attempt-0",
        "id": "I1",
        "value": 12.15,
        "currency": "EUR",
    }


def test_retries_are_bounded_and_end_as_unknown(flaky_provider: str) -> None:
    FlakyProvider.failures = 10
    result = client(flaky_provider, retries=2).charge(INVOICE)
    assert result.outcome is Outcome.UNKNOWN
    assert len(FlakyProvider.seen) == 3


def test_unreachable_provider_is_unknown_not_paid() -> None:
    result = client(f"http://127.0.0.1:{free_port()}", retries=1).charge(INVOICE)
    assert result.outcome is Outcome.UNKNOWN
    assert "unreachable" in result.reason


@pytest.mark.timeout(10)  # uncapped, it would sleep for six hours
def test_retry_after_is_capped_by_the_backoff_maximum(flaky_provider: str) -> None:
    FlakyProvider.failures = 1
    FlakyProvider.retry_after = "21600"  # six hours, which urllib3 alone would obey
    started = time.monotonic()
    result = client(flaky_provider, retries=1).charge(INVOICE)
    assert result.outcome is Outcome.CONFIRMED
    assert time.monotonic() - started < 2, "waited at most PAYMENT_BACKOFF_MAX_SECONDS (0.05)"


def test_the_client_posts_to_payments_pay_once_whichever_url_form_was_configured(
    flaky_provider: str,
) -> None:
    for url in (flaky_provider, f"{flaky_provider}/payments/pay", f"{flaky_provider}/"):
        assert client(provider_base_url(url), retries=0).url == f"{flaky_provider}/payments/pay"
