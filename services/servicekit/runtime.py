"""Settings every service reads the same way, so each config.py lists only its own."""

import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from servicekit import jsonlog, settings
from servicekit.server import ServerSettings

C = TypeVar("C")


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


def configure(service: str, load: Callable[[], C]) -> C:
    """Loads a service's configuration and sets up its JSON logs; a bad setting ends the
    process with exit code 2 and one line naming the variable, not a traceback."""
    try:
        config = load()
    except settings.ConfigError as error:
        print(f"{service}: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    jsonlog.configure(service, config.log_level)  # type: ignore[attr-defined]
    return config
