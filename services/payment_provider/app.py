"""payment-provider's HTTP API. Internal only: the cluster gives it no Ingress, and its
NetworkPolicy admits invoice-app alone."""

import hmac
import logging
import random
from dataclasses import dataclass

import bottle

from payment_provider.config import Config
from payment_provider.domain import InvalidRequest, decide, parse, validate_key
from payment_provider.store import KeyReused, PaymentLedger
from servicekit.db import Database
from servicekit.metrics import HttpMetrics
from servicekit.server import Lifecycle
from servicekit.web import (
    WsgiApp,
    create_app,
    fail,
    header,
    instrument,
    read_json_body,
    respond,
)

log = logging.getLogger("payment-provider")

MAX_LIST = 10_000


@dataclass
class Service:
    wsgi: WsgiApp
    lifecycle: Lifecycle
    ledger: PaymentLedger


def build(config: Config, rng: random.Random | None = None) -> Service:
    ledger = PaymentLedger(Database(config.database.url, pool_size=config.database.pool_size))
    rng = rng or random.Random()
    lifecycle = Lifecycle()
    metrics = HttpMetrics()
    payments = metrics.counter("payments_total", "Charge requests by outcome.", ["outcome"])
    app = create_app(
        metrics,
        is_ready=lambda: not lifecycle.draining.is_set() and ledger.db.ping(),
        max_body_bytes=config.server.max_body_bytes,
    )
    expected_auth = f"Bearer {config.token}".encode()

    def authorise() -> None:
        if not config.token:
            return
        given = (header("Authorization") or "").encode("latin-1")
        if not hmac.compare_digest(given, expected_auth):
            payments.labels("unauthorised").inc()
            raise fail(401, "Missing or invalid bearer token")

    @app.post("/payments/pay")
    def pay() -> str:
        authorise()
        try:
            request = parse(read_json_body(config.server.max_body_bytes))
            key = validate_key(header("Idempotency-Key"))
        except InvalidRequest as error:
            payments.labels("invalid").inc()
            raise fail(400, str(error)) from None
        try:
            answer, replayed = ledger.record(
                key, request, decide(request, config.failure_rate, rng)
            )
        except KeyReused:
            payments.labels("key_reused").inc()
            raise fail(409, "Idempotency-Key was already used for a different payment") from None
        outcome = "charged" if answer.status == 200 else "declined"
        payments.labels(f"{outcome}_replayed" if replayed else outcome).inc()
        if replayed:
            bottle.response.set_header("Idempotent-Replayed", "true")
        return respond(answer.body, answer.status)

    @app.get("/payments")
    def list_payments() -> str:
        raw_limit = bottle.request.query.get("limit", "1000")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIST:
            raise fail(400, f"limit must be an integer from 1 to {MAX_LIST}")
        return respond(ledger.list(bottle.request.query.get("id") or None, int(raw_limit)))

    @app.get("/payments/summary")
    def summary() -> str:
        return respond(ledger.summary())

    return Service(instrument(app, metrics, lifecycle.in_flight), lifecycle, ledger)
