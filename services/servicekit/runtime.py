"""Settings every service reads the same way, so each config.py lists only its own."""

import logging
import sys
import urllib.parse
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
    timeout_seconds: float

    def __repr__(self) -> str:
        # The URL may carry the password: never print it whole.
        return f"DatabaseSettings(url={redact(self.url)!r}, pool_size={self.pool_size})"


def redact(url: str) -> str:
    """A URL with any password replaced, fit for logs and errors."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc}"))


def log_level(env: Mapping[str, str]) -> str:
    level = settings.text(env, "LOG_LEVEL", "INFO").upper()
    if level not in logging.getLevelNamesMapping():
        raise settings.ConfigError(f"LOG_LEVEL must be a logging level name, got {level!r}")
    return level


def server(env: Mapping[str, str], default_port: int, metrics_port: int) -> ServerSettings:
    chosen = ServerSettings(
        host=settings.text(env, "HOST", "0.0.0.0"),
        port=settings.integer(env, "PORT", default_port, minimum=1),
        threads=settings.integer(env, "THREADS", 8, minimum=1),
        max_body_bytes=settings.integer(env, "MAX_BODY_BYTES", 64 * 1024, minimum=1024),
        drain_seconds=settings.number(env, "SHUTDOWN_DRAIN_SECONDS", 0.0),
        shutdown_timeout_seconds=settings.number(env, "SHUTDOWN_TIMEOUT_SECONDS", 20.0),
        metrics_port=settings.integer(env, "METRICS_PORT", metrics_port, minimum=1),
    )
    if chosen.metrics_port == chosen.port:
        raise settings.ConfigError(
            f"METRICS_PORT must differ from PORT ({chosen.port}): metrics stay off the API port"
        )
    return chosen


DATABASE_SCHEMES = ("sqlite:///", "postgresql://", "postgres://")


def database(env: Mapping[str, str], default_url: str, *, threads: int) -> DatabaseSettings:
    """Every request thread may hold a connection, so the pool is at least THREADS (its
    default): a smaller one makes requests queue for a connection behind each other."""
    url = settings.text(env, "DATABASE_URL", default_url)
    if not url.startswith(DATABASE_SCHEMES):
        scheme = url.split(":", 1)[0][:20] if ":" in url else "none"
        raise settings.ConfigError(
            f"DATABASE_URL must start with sqlite:/// or postgresql://, got scheme {scheme!r}"
        )
    pool_size = settings.integer(env, "DATABASE_POOL_SIZE", threads, minimum=1)
    if pool_size < threads:
        raise settings.ConfigError(
            f"DATABASE_POOL_SIZE must be at least THREADS ({threads}), got {pool_size}"
        )
    return DatabaseSettings(
        url=url,
        pool_size=pool_size,
        wait_seconds=settings.number(env, "DATABASE_WAIT_SECONDS", 60.0),
        timeout_seconds=settings.number(env, "DATABASE_TIMEOUT_SECONDS", 5.0, positive=True),
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
