"""Settings every service reads the same way, so each config.py lists only its own."""

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from servicekit import settings
from servicekit.server import ServerSettings


@dataclass(frozen=True)
class DatabaseSettings:
    url: str
    pool_size: int
    wait_seconds: float


def log_level(env: Mapping[str, str]) -> str:
    level = settings.text(env, "LOG_LEVEL", "INFO").upper()
    if level not in logging.getLevelNamesMapping():
        raise settings.ConfigError(f"LOG_LEVEL must be a logging level name, got {level!r}")
    return level


def server(env: Mapping[str, str], default_port: int) -> ServerSettings:
    return ServerSettings(
        host=settings.text(env, "HOST", "0.0.0.0"),
        port=settings.integer(env, "PORT", default_port, minimum=1),
        threads=settings.integer(env, "THREADS", 8, minimum=1),
        max_body_bytes=settings.integer(env, "MAX_BODY_BYTES", 64 * 1024, minimum=1024),
        drain_seconds=settings.number(env, "SHUTDOWN_DRAIN_SECONDS", 0.0),
        shutdown_timeout_seconds=settings.number(env, "SHUTDOWN_TIMEOUT_SECONDS", 20.0),
    )


def database(env: Mapping[str, str], default_url: str) -> DatabaseSettings:
    return DatabaseSettings(
        url=settings.text(env, "DATABASE_URL", default_url),
        pool_size=settings.integer(env, "DATABASE_POOL_SIZE", 8, minimum=1),
        wait_seconds=settings.number(env, "DATABASE_WAIT_SECONDS", 60.0),
    )
