"""The reads floor: invoice-app's GET /invoices?limit=100 without its framework. A bare WSGI
callable, served by servicekit's own waitress server with invoice-app's configuration (THREADS,
the pool size, timeouts: `invoice_app.config`), runs invoice-app's own query through its own
pool (`InvoiceStore` on `servicekit.db.Database`) and encodes with its own encoder. What it
leaves out is exactly what the service adds on top: Bottle's routing, hooks and query parsing,
and the metrics, access log and in-flight count of `servicekit.web.instrument`.

    PYTHONPATH=services:. python -m tests.bench.reads_floor   (the service's environment)
"""

import sys
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry

from invoice_app import config
from invoice_app.app import original
from invoice_app.store import InvoiceStore
from servicekit import runtime
from servicekit.db import Database
from servicekit.server import Lifecycle, serve
from servicekit.web import to_json

PATH = "/invoices"
LIMIT = 100


def build(settings: config.Config) -> Callable:
    # As invoice_app.app.build makes the store.
    store = InvoiceStore(
        Database(
            settings.database.url,
            pool_size=settings.database.pool_size,
            connect_timeout=settings.database.timeout_seconds,
        )
    )

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        page = store.list_invoices(after_id="", limit=LIMIT)
        body = to_json([original(invoice) for invoice in page]).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


def main() -> int:
    settings = runtime.configure("reads-floor", config.load)
    serve(build(settings), settings.server, Lifecycle(), CollectorRegistry())
    return 0


if __name__ == "__main__":
    sys.exit(main())
