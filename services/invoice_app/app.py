"""invoice-app's HTTP API: the original exercise's routes, and an Antaeus-compatible view of
the same data under /rest."""

import logging
import time
from dataclasses import dataclass

import bottle

from invoice_app.config import Config
from invoice_app.domain import Invoice, Status, pay_pending
from invoice_app.payments import PaymentProviderClient
from invoice_app.store import InvoiceStore
from servicekit.db import Database
from servicekit.metrics import HttpMetrics
from servicekit.server import Lifecycle
from servicekit.web import WsgiApp, create_app, fail, instrument, respond

log = logging.getLogger("invoice-app")

MAX_PAGE = 1000
# "pay" is an action, not an invoice id: GET /invoices/pay is a 405, not a lookup of "pay".
INVOICE_ID = "<invoice_id:re:(?!pay$)[^/]+>"


@dataclass
class Service:
    wsgi: WsgiApp
    lifecycle: Lifecycle
    store: InvoiceStore


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
        "id": invoice.id,
        "customerId": invoice.customer_id,
        "amount": {"value": invoice.amount, "currency": invoice.currency},
        "status": invoice.status.value,
    }


def build(config: Config) -> Service:
    store = InvoiceStore(Database(config.database.url, pool_size=config.database.pool_size))
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
    payments = metrics.counter("invoice_payments_total", "Charge attempts by outcome.", ["outcome"])
    pay_runs = metrics.histogram("invoice_pay_run_seconds", "Duration of one pay run.")

    app = create_app(
        metrics,
        is_ready=lambda: not lifecycle.draining.is_set() and store.db.ping(),
        max_body_bytes=config.server.max_body_bytes,
    )

    def page() -> tuple[str, int | None]:
        after = bottle.request.query.get("after", "")
        raw_limit = bottle.request.query.get("limit")
        if raw_limit is None:
            return after, None
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
            raise fail(400, f"limit must be an integer from 1 to {MAX_PAGE}")
        return after, int(raw_limit)

    def find(invoice_id: str) -> Invoice:
        invoice = store.get_invoice(invoice_id)
        if invoice is None:
            raise fail(404, f"Invoice {invoice_id!r} not found")
        return invoice

    def pay() -> dict:
        started = time.perf_counter()
        report = pay_pending(
            store,
            provider.charge,
            batch_size=config.pay_batch_size,
            concurrency=config.pay_concurrency,
        )
        pay_runs.observe(time.perf_counter() - started)
        payments.labels("paid").inc(len(report.paid))
        for unpaid in report.unpaid:
            payments.labels(unpaid["Outcome"]).inc()
        log.info("pay run", extra={"paid": len(report.paid), "unpaid": len(report.unpaid)})
        return report.as_json()

    @app.get("/invoices")
    def list_invoices() -> str:
        after, limit = page()
        return respond([original(i) for i in store.list_invoices(after_id=after, limit=limit)])

    @app.get(f"/invoices/{INVOICE_ID}")
    def get_invoice(invoice_id: str) -> str:
        return respond(original(find(invoice_id)))

    @app.post("/invoices/pay")
    def pay_invoices() -> str:
        return respond(pay())

    @app.get("/rest/health")
    def rest_health() -> str:
        return respond("ok")

    @app.get("/rest/v1/invoices")
    def rest_invoices() -> str:
        after, limit = page()
        return respond([antaeus(i) for i in store.list_invoices(after_id=after, limit=limit)])

    @app.get(f"/rest/v1/invoices/{INVOICE_ID}")
    def rest_invoice(invoice_id: str) -> str:
        return respond(antaeus(find(invoice_id)))

    @app.post("/rest/v1/invoices/pay")
    def rest_pay() -> str:
        pay()
        return respond(store.count_pending() == 0)

    @app.get("/rest/v1/customers")
    def rest_customers() -> str:
        return respond([{"id": c, "currency": cur} for c, cur in store.list_customers()])

    @app.get("/rest/v1/customers/<customer_id>")
    def rest_customer(customer_id: str) -> str:
        customer = store.get_customer(customer_id)
        if customer is None:
            raise fail(404, f"Customer {customer_id!r} not found")
        return respond({"id": customer[0], "currency": customer[1]})

    return Service(instrument(app, metrics, lifecycle.in_flight), lifecycle, store)
