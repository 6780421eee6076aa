"""payment-provider's HTTP API. Internal only: the cluster gives it no Ingress, and its
NetworkPolicy admits invoice-app alone."""

import logging
import random
from dataclasses import dataclass

import bottle

from payment_provider.config import Config
from payment_provider.domain import (
    BAD_PARAMETERS,
    EMPTY_BODY,
    InvalidRequest,
    decide,
    parse,
    validate_key,
)
from payment_provider.store import KeyReused, PaymentLedger
from servicekit.db import POOL_METRICS, Database
from servicekit.metrics import HttpMetrics
from servicekit.server import Lifecycle
from servicekit.web import (
    WsgiApp,
    bearer_token_matches,
    create_app,
    fail,
    header,
    instrument,
    query_integer,
    read_json_body,
    respond,
)

log = logging.getLogger("payment-provider")

MAX_LIST = 10_000


@dataclass
class Service:
    wsgi: WsgiApp
    lifecycle: Lifecycle
    metrics: HttpMetrics
    ledger: PaymentLedger


def build(config: Config, rng: random.Random | None = None) -> Service:
    ledger = PaymentLedger(
        Database(
            config.database.url,
            pool_size=config.database.pool_size,
            connect_timeout=config.database.timeout_seconds,
        )
    )
    rng = rng or random.Random()
    lifecycle = Lifecycle()
    metrics = HttpMetrics()
    metrics.gauges_at_scrape(ledger.db.pool_stats, POOL_METRICS)
    payments = metrics.counter("payments_total", "Charge requests by outcome.", ["outcome"])
    app = create_app(
        is_ready=lambda: not lifecycle.draining.is_set() and ledger.db.ping(),
        max_body_bytes=config.server.max_body_bytes,
    )

    def authorise() -> None:
        if not bearer_token_matches(config.token):
            payments.labels("unauthorised").inc()
            raise fail(401, "Missing or invalid bearer token")

    @app.post("/payments/pay")
    def pay() -> str:
        authorise()
        try:
            body = read_json_body(
                config.server.max_body_bytes, empty=EMPTY_BODY, invalid=BAD_PARAMETERS
            )
            request = parse(body)
            key = validate_key(header("Idempotency-Key"))
        except InvalidRequest as error:
            payments.labels("invalid").inc()
            raise fail(400, error.message, error.detail) from None
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
        authorise()
        limit = query_integer("limit", 1000, minimum=1, maximum=MAX_LIST)
        return respond(ledger.list(bottle.request.query.get("id") or None, limit))

    @app.get("/payments/summary")
    def summary() -> str:
        authorise()
        return respond(ledger.summary())

    return Service(instrument(app, metrics, lifecycle.in_flight), lifecycle, metrics, ledger)
