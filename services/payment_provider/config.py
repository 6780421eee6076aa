"""payment-provider's configuration, read once from the environment."""

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
    token: str
    failure_rate: float


def load(env: Mapping[str, str] | None = None) -> Config:
    env = settings.environment() if env is None else env
    return Config(
        server=runtime.server(env, default_port=8082),
        log_level=runtime.log_level(env),
        database=runtime.database(env, "sqlite:///payment-provider.db"),
        token=settings.text(env, "PAYMENT_PROVIDER_TOKEN", ""),
        failure_rate=settings.number(env, "FAILURE_RATE", 0.0, maximum=1.0),
    )
