"""payment-provider's configuration, read once from the environment."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from servicekit import runtime, settings
from servicekit.runtime import DatabaseSettings
from servicekit.server import ServerSettings


@dataclass(frozen=True)
class Config:
    server: ServerSettings
    log_level: str
    database: DatabaseSettings
    token: str = field(repr=False)
    failure_rate: float


def load(env: Mapping[str, str] | None = None) -> Config:
    env = settings.environment() if env is None else env
    server = runtime.server(env, default_port=8082, metrics_port=9092)
    return Config(
        server=server,
        log_level=runtime.log_level(env),
        database=runtime.database(env, "sqlite:///payment-provider.db", threads=server.threads),
        token=token(env),
        failure_rate=settings.number(env, "FAILURE_RATE", 0.0, maximum=1.0),
    )


def token(env: Mapping[str, str]) -> str:
    """Fails closed: no token means no start, unless a local run opts out on purpose (and
    __main__ says so loudly in the log)."""
    value = settings.text(env, "PAYMENT_PROVIDER_TOKEN", "")
    if not value and not settings.flag(env, "PAYMENT_PROVIDER_ALLOW_NO_TOKEN"):
        raise settings.ConfigError(
            "PAYMENT_PROVIDER_TOKEN is empty: set it, or set PAYMENT_PROVIDER_ALLOW_NO_TOKEN=true"
            " to run without authentication (local runs only)"
        )
    return value
