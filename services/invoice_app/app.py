"""invoice-app's HTTP API: the original exercise's routes, and an Antaeus-compatible view of
the same data under /rest."""

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import bottle

from invoice_app.config import Config
from invoice_app.domain import Invoice, PayReport, Status, pay_pending
from invoice_app.payments import PaymentProviderClient
from invoice_app.runner import Busy, PayRunner
from invoice_app.store import InvoiceStore
from servicekit.db import POOL_METRICS, Database
from servicekit.metrics import HttpMetrics
from servicekit.server import Lifecycle
from servicekit.web import (
    WsgiApp,
    bearer_token_matches,
    create_app,
    fail,
    instrument,
    query_cursor,
    query_integer,
    respond,
)

log = logging.getLogger("invoice-app")

MAX_PAGE = 1000
MAX_NUMBER = 2**63 - 1  # BIGINT
NUMBER = "<number:re:[0-9]+>"  # the Antaeus view's ids; "pay" is not one
# "pay" is an action, not an invoice id: GET /invoices/pay is a 405, not a lookup of "pay".
INVOICE_ID = "<invoice_id:re:(?!pay$)[^/]+>"


@dataclass
class Service:
    wsgi: WsgiApp
    lifecycle: Lifecycle
    metrics: HttpMetrics
    store: InvoiceStore
    pay_once: Callable[[], PayReport]


def original(invoice: Invoice) -> dict:
    return {
        "InvoiceId": invoice.id,
        "CustomerId": invoice.customer_id,
        "Value": invoice.amount,
        "Currency": invoice.currency,
        "IsPaid": invoice.status is Status.PAID,
        "Status": invoice.status.value,
    }


def antaeus(invoice: Invoice) -> dict:
    return {
        "id": invoice.number,
        "customerId": invoice.customer_number,
        "amount": {"value": invoice.amount, "currency": invoice.currency},
        "status": invoice.status.value,
    }


def build(config: Config) -> Service:
    store = InvoiceStore(
        Database(
            config.database.url,
            pool_size=config.database.pool_size,
            connect_timeout=config.database.timeout_seconds,
        )
    )
    provider = PaymentProviderClient(
        config.payment_provider_url,
        token=config.payment_provider_token,
        timeout_seconds=config.payment_timeout_seconds,
        max_retries=config.payment_max_retries,
        backoff_seconds=config.payment_backoff_seconds,
        backoff_max_seconds=config.payment_backoff_max_seconds,
        pool_size=config.pay_concurrency,
    )
    lifecycle = Lifecycle()
    metrics = HttpMetrics()
    metrics.gauges_at_scrape(store.db.pool_stats, POOL_METRICS)
    metrics.gauges_at_scrape(
        store.backlog,
        {
            "invoices_pending": "Invoices waiting to be paid.",
            "invoices_oldest_pending_age_seconds": "Seconds the oldest pending invoice has waited.",
        },
    )
    payments = metrics.counter("invoice_payments_total", "Charge attempts by outcome.", ["outcome"])
    pay_run_seconds = metrics.histogram("invoice_pay_run_seconds", "Duration of one pay run.")
    pay_runs = metrics.counter(
        "invoice_pay_runs_total",
        "Pay runs by how they ended: complete, deadline or breaker.",
        ["outcome"],
    )

    app = create_app(
        is_ready=lambda: not lifecycle.draining.is_set() and store.db.ping(),
        max_body_bytes=config.server.max_body_bytes,
    )

    def page() -> tuple[str, int | None]:
        return query_cursor("after"), query_integer("limit", None, minimum=1, maximum=MAX_PAGE)

    def find(invoice_id: str) -> Invoice:
        invoice = store.get_invoice(invoice_id)
        if invoice is None:
            raise fail(404, f"Invoice {invoice_id!r} not found")
        return invoice

    def pay_once() -> PayReport:
        """One pay run: what the HTTP routes run off their threads, and the CLI runs alone."""
        started = time.perf_counter()
        report = pay_pending(
            store,
            provider.charge,
            batch_size=config.pay_batch_size,
            concurrency=config.pay_concurrency,
            limits=config.pay_limits,
        )
        pay_run_seconds.observe(time.perf_counter() - started)
        pay_runs.labels(report.stopped.value).inc()
        payments.labels("paid").inc(report.paid_count)
        for outcome, count in report.unpaid_by_outcome.items():
            payments.labels(outcome).inc(count)
        log.info(
            "pay run",
            extra={
                "paid": report.paid_count,
                "unpaid": report.unpaid_count,
                "stopped": report.stopped.value,
            },
        )
        return report

    runner = PayRunner(pay_once, request_threads=config.server.threads)

    def pay() -> dict:
        try:
            return runner.pay().as_json()
        except Busy:
            bottle.response.set_header("Retry-After", "5")
            raise fail(429, "A pay run is in progress on this replica; try again shortly") from None

    @app.get("/invoices")
    def list_invoices() -> str:
        after, limit = page()
        return respond([original(i) for i in store.list_invoices(after_id=after, limit=limit)])

    @app.get(f"/invoices/{INVOICE_ID}")
    def get_invoice(invoice_id: str) -> str:
        return respond(original(find(invoice_id)))

    def authorise() -> None:
        # Paying charges every customer: with INVOICE_APP_API_TOKEN set, only its holders may.
        if not bearer_token_matches(config.api_token):
            raise fail(401, "Missing or invalid bearer token")

    @app.post("/invoices/pay")
    def pay_invoices() -> str:
        authorise()
        return respond(pay())

    @app.get("/rest/health")
    def rest_health() -> str:
        return respond("ok")

    @app.get("/rest/v1/invoices")
    def rest_invoices() -> str:
        after = query_integer("after", 0, minimum=0, maximum=MAX_NUMBER)
        limit = query_integer("limit", None, minimum=1, maximum=MAX_PAGE)
        return respond([antaeus(i) for i in store.list_by_number(after=after, limit=limit)])

    @app.get(f"/rest/v1/invoices/{NUMBER}")
    def rest_invoice(number: str) -> str:
        invoice = store.get_by_number(antaeus_id(number, "Invoice"))
        if invoice is None:
            raise fail(404, f"Invoice {number} not found")
        return respond(antaeus(invoice))

    @app.post("/rest/v1/invoices/pay")
    def rest_pay() -> str:
        authorise()
        pay()
        return respond(store.count_pending() == 0)

    @app.get("/rest/v1/customers")
    def rest_customers() -> str:
        return respond([{"id": c.number, "currency": c.currency} for c in store.list_customers()])

    @app.get(f"/rest/v1/customers/{NUMBER}")
    def rest_customer(number: str) -> str:
        customer = store.get_customer(antaeus_id(number, "Customer"))
        if customer is None:
            raise fail(404, f"Customer {number} not found")
        return respond({"id": customer.number, "currency": customer.currency})

    wsgi = instrument(antaeus_paths(app), metrics, lifecycle.in_flight)
    return Service(wsgi, lifecycle, metrics, store, pay_once)


def antaeus_id(raw: str, what: str) -> int:
    """Antaeus ids are integers: anything else names no invoice or customer."""
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_NUMBER:
        raise fail(404, f"{what} {raw[:40]!r} not found", "Antaeus ids are positive integers")
    return int(raw)


def antaeus_paths(app: WsgiApp) -> WsgiApp:
    """Antaeus (Javalin) matches its routes case-insensitively, with or without a trailing
    slash: clients call /rest/v1/Customers/. Its ids are integers, so lowering is safe."""

    def wsgi(environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path[:5].lower() == "/rest":
            environ["PATH_INFO"] = path.lower().rstrip("/") or "/"
        return app(environ, start_response)

    return wsgi
