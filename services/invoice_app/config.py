"""invoice-app's configuration, read once from the environment. Every default works on a
laptop with nothing else running: a SQLite file, and the provider on 127.0.0.1:8082."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from invoice_app.domain import RunLimits
from servicekit import runtime, settings
from servicekit.runtime import DatabaseSettings
from servicekit.server import ServerSettings


@dataclass(frozen=True)
class Config:
    server: ServerSettings
    log_level: str
    database: DatabaseSettings
    payment_provider_url: str
    payment_provider_token: str = field(repr=False)
    api_token: str = field(repr=False)
    payment_timeout_seconds: float
    payment_max_retries: int
    payment_backoff_seconds: float
    payment_backoff_max_seconds: float
    pay_batch_size: int
    pay_concurrency: int
    pay_limits: RunLimits


PAY_PATH = "/payments/pay"


def provider_base_url(url: str) -> str:
    """The provider's base URL, from either form that clients set: a base URL, or the original
    invoice-app's full endpoint (`http://payment-provider:8082/payments/pay`)."""
    url = url.rstrip("/")
    return url.removesuffix(PAY_PATH).rstrip("/") if url.endswith(PAY_PATH) else url


def load(env: Mapping[str, str] | None = None) -> Config:
    env = settings.environment() if env is None else env
    provider_url = settings.text(env, "PAYMENT_PROVIDER_URL", "http://127.0.0.1:8082")
    if not provider_url.startswith(("http://", "https://")):
        raise settings.ConfigError(
            "PAYMENT_PROVIDER_URL must be an http(s) URL (a base URL, or one ending in"
            f" {PAY_PATH}), got {provider_url!r}"
        )
    server = runtime.server(env, default_port=8081, metrics_port=9091)
    return Config(
        server=server,
        log_level=runtime.log_level(env),
        database=runtime.database(env, "sqlite:///invoice-app.db", threads=server.threads),
        payment_provider_url=provider_base_url(provider_url),
        payment_provider_token=settings.text(env, "PAYMENT_PROVIDER_TOKEN", ""),
        # Empty keeps the pay routes open, as the original exercise's client expects (dev).
        api_token=settings.text(env, "INVOICE_APP_API_TOKEN", ""),
        payment_timeout_seconds=settings.number(env, "PAYMENT_TIMEOUT_SECONDS", 5.0, positive=True),
        payment_max_retries=settings.integer(env, "PAYMENT_MAX_RETRIES", 4),
        payment_backoff_seconds=settings.number(env, "PAYMENT_BACKOFF_SECONDS", 0.2),
        payment_backoff_max_seconds=settings.number(env, "PAYMENT_BACKOFF_MAX_SECONDS", 2.0),
        pay_batch_size=settings.integer(env, "PAY_BATCH_SIZE", 200, minimum=1),
        pay_concurrency=settings.integer(env, "PAY_CONCURRENCY", 8, minimum=1),
        pay_limits=pay_limits(env),
    )


def pay_limits(env: Mapping[str, str]) -> RunLimits:
    deadline = settings.number(env, "PAY_RUN_DEADLINE_SECONDS", 55.0, positive=True)
    return RunLimits(
        deadline_seconds=deadline,
        breaker_threshold=settings.integer(env, "PAY_BREAKER_THRESHOLD", 5, minimum=1),
        sample_size=settings.integer(env, "PAY_REPORT_SAMPLE", 100, minimum=0),
        lease_seconds=deadline + longest_charge_seconds(env) + LEASE_MARGIN_SECONDS,
    )


LEASE_MARGIN_SECONDS = 10.0


def longest_charge_seconds(env: Mapping[str, str]) -> float:
    """The longest one charge can take: every try times out, and every wait between tries is
    the longest backoff (Retry-After is capped by it too)."""
    tries = settings.integer(env, "PAYMENT_MAX_RETRIES", 4) + 1
    timeout = settings.number(env, "PAYMENT_TIMEOUT_SECONDS", 5.0, positive=True)
    backoff_max = settings.number(env, "PAYMENT_BACKOFF_MAX_SECONDS", 2.0)
    # requests' timeout applies to connecting and to each read: count both.
    return tries * 2 * timeout + (tries - 1) * backoff_max
