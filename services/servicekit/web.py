"""The HTTP plumbing both services share: JSON errors from one place, bounded JSON bodies,
and a WSGI wrapper that logs, measures and counts requests in flight."""

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import bottle

from servicekit.db import DatabaseUnavailable
from servicekit.metrics import HttpMetrics

log = logging.getLogger("http")

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


def to_json(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def _json_default(value: Any) -> Any:
    # Amounts are NUMERIC(12,2): at most 12 significant digits, which a float's shortest repr
    # reproduces exactly, so clients see 12.15, not "12.15" or 12.1500000001.
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def respond(body: Any, status: int = 200) -> str:
    bottle.response.status = status
    bottle.response.content_type = "application/json"
    return to_json(body)


class ClientError(bottle.HTTPError):
    """An error for the client, rendered as `{"error": message, "detail": detail}`."""

    def __init__(self, status: int, message: str, detail: str | None = None) -> None:
        super().__init__(status, message)
        self.detail = detail


def fail(status: int, message: str, detail: str | None = None) -> bottle.HTTPError:
    """An error for the client; raise it, and the app's error handler renders it as JSON.
    `message` is the stable text clients compare; `detail`, when given, says more."""
    return ClientError(status, message, detail)


def query_integer(name: str, default: int | None, *, minimum: int, maximum: int) -> Any:
    """An integer query parameter, or a 400. ASCII digits only: str.isdigit accepts '²'."""
    raw = bottle.request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 20) or not (
        minimum <= int(raw) <= maximum
    ):
        raise fail(400, f"{name} must be an integer from {minimum} to {maximum}")
    return int(raw)


def query_cursor(name: str) -> str:
    """A keyset cursor (a previous page's last id): printable ASCII, as every id issued is.
    Anything else could sort differently in the database than in the client, and repeat a
    page forever."""
    raw = bottle.request.query.get(name, "")
    if not (raw.isascii() and raw.isprintable()) or len(raw) > 1000:
        raise fail(400, f"{name} must be an id from a previous page (printable ASCII)")
    return raw


def header(name: str) -> str | None:
    """A request header as the client sent it. Bottle's own accessor decodes headers as UTF-8
    and raises on other bytes; the raw WSGI value cannot fail, and callers validate it."""
    return bottle.request.environ.get("HTTP_" + name.upper().replace("-", "_"))


def bearer_token_matches(token: str) -> bool:
    """Whether the request carries `Authorization: Bearer <token>`; always, when no token is
    configured (the caller decided that is allowed). Compared in constant time."""
    if not token:
        return True
    given = (header("Authorization") or "").encode("latin-1", errors="replace")
    return hmac.compare_digest(given, f"Bearer {token}".encode())


def read_json_body(max_bytes: int, *, empty: str, invalid: str) -> Any:
    """The request body parsed as JSON, or a 400 with the `empty` or `invalid` message (the
    caller's stable texts) and a detail. (Bodies over the limit were refused before the route
    ran.)"""
    raw = bottle.request.body.read(max_bytes + 1) if bottle.request.content_length > 0 else b""
    if not raw.strip():
        raise fail(400, empty, "Please send a JSON request body")
    try:
        return json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as error:
        raise fail(400, invalid, f"Invalid JSON: {error}") from None
    except RecursionError:
        raise fail(400, invalid, "Invalid JSON: nested too deeply") from None


def create_app(is_ready: Callable[[], bool], max_body_bytes: int) -> bottle.Bottle:
    """A Bottle app with JSON errors, a crash guard, a bound on request bodies, and the
    liveness and readiness endpoints every service exposes. (Metrics have their own port:
    servicekit.server.)"""
    app = bottle.Bottle(catchall=True, autojson=False)
    app.default_error_handler = _render_error  # type: ignore[method-assign]
    app.install(_crash_guard)
    app.add_hook("before_request", _refuse_nul_characters)

    @app.hook("before_request")
    def refuse_large_bodies() -> None:
        # On every route, including those that never read a body (POST /invoices/pay).
        length = bottle.request.content_length
        if length > max_body_bytes:
            raise fail(
                413, f"Request body too large: {length} bytes, the limit is {max_body_bytes}"
            )

    @app.get("/healthz")
    def healthz() -> str:
        return respond({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> str:
        if not is_ready():
            raise fail(503, "not ready")
        return respond({"status": "ready"})

    return app


def _refuse_nul_characters() -> None:
    # PostgreSQL cannot store NUL in text; refusing it here keeps it from ever reaching a query.
    request = bottle.request
    if "\x00" in request.path or any("\x00" in k + v for k, v in request.query.allitems()):
        raise fail(400, "NUL characters are not allowed in the path or query")


def _render_error(error: bottle.HTTPError) -> str:
    bottle.response.content_type = "application/json"
    detail = getattr(error, "detail", None)
    return to_json({"error": error.body, "detail": detail} if detail else {"error": error.body})


def _crash_guard(callback: Callable) -> Callable:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except bottle.HTTPResponse:
            raise
        except DatabaseUnavailable as error:
            log.warning("database unavailable: %s", error)
            raise fail(503, "Database unavailable, try again shortly") from None
        except Exception:
            # Logged here as JSON with the traceback; the client only learns that it failed.
            log.exception("unhandled error in %s", bottle.request.path)
            raise fail(500, "Internal error; it has been logged") from None

    return guarded


class InFlight:
    """Counts requests being served, so shutdown can wait until none are left."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = threading.Condition()

    def __enter__(self) -> None:
        with self._idle:
            self._count += 1

    def __exit__(self, *_: object) -> None:
        with self._idle:
            self._count -= 1
            if self._count == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout)


def instrument(app: bottle.Bottle, metrics: HttpMetrics, in_flight: InFlight) -> WsgiApp:
    """Wraps the app: an access log line, request metrics by route template, in-flight count."""

    def wsgi(environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        seen: dict[str, str] = {}

        def remember_status(status: str, headers: list, exc_info: Any = None) -> Callable:
            seen["status"] = status.split(" ", 1)[0]
            return start_response(status, headers, exc_info)

        with in_flight, metrics.in_flight.track_inprogress():
            body = list(app(environ, remember_status))
        elapsed = time.perf_counter() - started
        route = environ.get("bottle.route")
        template = route.rule if route is not None else "unmatched"
        method = environ.get("REQUEST_METHOD", "")
        method = method if method in _METHODS else "OTHER"  # a label per made-up method is a DoS
        status = seen.get("status", "000")
        metrics.requests.labels(method, template, status).inc()
        metrics.latency.labels(method, template).observe(elapsed)
        if template not in _QUIET_ROUTES:
            log.info(
                "request",
                extra={
                    "method": method,
                    "path": environ.get("PATH_INFO", ""),
                    "status": int(status),
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
        return body

    return wsgi


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Probes and scrapes arrive every few seconds; logging each would drown the real traffic.
_QUIET_ROUTES = frozenset({"/healthz", "/readyz"})
