"""waitress, with the shutdown Kubernetes expects: on SIGTERM, report not-ready, keep serving
while endpoints update, finish what is in flight, then exit 0."""

import _thread
import logging
import signal
import threading
import time
from dataclasses import dataclass

import prometheus_client
import waitress
from prometheus_client import CollectorRegistry

from servicekit.web import InFlight, WsgiApp

log = logging.getLogger("server")


TRANSPORT_BODY_LIMIT = 8 * 1024 * 1024


@dataclass(frozen=True)
class ServerSettings:
    host: str
    port: int
    threads: int
    max_body_bytes: int
    drain_seconds: float
    shutdown_timeout_seconds: float
    metrics_port: int


class Lifecycle:
    """Shared between the readiness probe and the SIGTERM handler."""

    def __init__(self) -> None:
        self.draining = threading.Event()
        self.in_flight = InFlight()


def serve(
    app: WsgiApp, settings: ServerSettings, lifecycle: Lifecycle, metrics: CollectorRegistry
) -> None:
    # /metrics has a port of its own, which the Ingress never routes: only the cluster's
    # scrapers reach it, so public callers cannot read the service's internals.
    prometheus_client.start_http_server(settings.metrics_port, settings.host, metrics)
    log.info("metrics listening", extra={"port": settings.metrics_port})
    server = waitress.create_server(
        app,
        host=settings.host,
        port=settings.port,
        threads=settings.threads,
        # waitress cuts the connection on a body over its own limit, which a proxy in front
        # reports as a 502. Below this transport limit it reads the whole body, and the app
        # answers a clean 413 for anything over max_body_bytes (servicekit.web).
        max_request_body_size=max(settings.max_body_bytes, TRANSPORT_BODY_LIMIT),
        ident="",
        channel_timeout=30,
    )

    def on_sigterm(_signum: int, _frame: object) -> None:
        if lifecycle.draining.is_set():
            return
        lifecycle.draining.set()
        log.info("SIGTERM: draining", extra={"drain_seconds": settings.drain_seconds})
        threading.Thread(target=_drain_then_stop, args=(settings, lifecycle), daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    # The drain thread stops waitress by interrupting the main thread, which needs Python's
    # own SIGINT handler even where the parent started us with SIGINT ignored (as shells do
    # for background jobs).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    log.info("listening", extra={"host": settings.host, "port": server.effective_port})
    # waitress's run() turns KeyboardInterrupt into an orderly stop of its worker threads.
    server.run()
    log.info("stopped")


def _drain_then_stop(settings: ServerSettings, lifecycle: Lifecycle) -> None:
    time.sleep(settings.drain_seconds)
    if not lifecycle.in_flight.wait_idle(settings.shutdown_timeout_seconds):
        log.warning("shutdown timeout reached with requests still in flight")
    # Gives waitress's event loop a moment to flush the last responses to their sockets.
    time.sleep(0.2)
    _thread.interrupt_main()
