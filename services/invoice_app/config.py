"""invoice-app's configuration, read once from the environment. Every default works on a
laptop with nothing else running: a SQLite file, and the provider on 127.0.0.1:8082."""

from collections.abc import Mapping
from dataclasses import dataclass

from servicekit import runtime, settings
from servicekit.runtime import DatabaseSettings
from servicekit.server import ServerSettings


@dataclass(frozen=True)
class Config:
    server: ServerSettings
    log_level: str
    database: DatabaseSettings
    payment_provider_url: str
    payment_provider_token: str
    payment_timeout_seconds: float
    payment_max_retries: int
    payment_backoff_seconds: float
    payment_backoff_max_seconds: float
    pay_batch_size: int
    pay_concurrency: int


def load(env: Mapping[str, str] | None = None) -> Config:
    env = settings.environment() if env is None else env
    provider_url = settings.text(env, "PAYMENT_PROVIDER_URL", "http://127.0.0.1:8082")
    if not provider_url.startswith(("http://", "https://")):
        raise settings.ConfigError(
            f"PAYMENT_PROVIDER_URL must be an http(s) base URL, got {provider_url!r}"
        )
    return Config(
        server=runtime.server(env, default_port=8081),
        log_level=runtime.log_level(env),
        database=runtime.database(env, "sqlite:///invoice-app.db"),
        payment_provider_url=provider_url.rstrip("/"),
        payment_provider_token=settings.text(env, "PAYMENT_PROVIDER_TOKEN", ""),
        payment_timeout_seconds=settings.number(env, "PAYMENT_TIMEOUT_SECONDS", 5.0),
        payment_max_retries=settings.integer(env, "PAYMENT_MAX_RETRIES", 4),
        payment_backoff_seconds=settings.number(env, "PAYMENT_BACKOFF_SECONDS", 0.2),
        payment_backoff_max_seconds=settings.number(env, "PAYMENT_BACKOFF_MAX_SECONDS", 2.0),
        pay_batch_size=settings.integer(env, "PAY_BATCH_SIZE", 200, minimum=1),
        pay_concurrency=settings.integer(env, "PAY_CONCURRENCY", 8, minimum=1),
    )
