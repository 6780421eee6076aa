"""Typed reads of environment variables, failing fast with a message that names the variable."""

import os
from collections.abc import Mapping


class ConfigError(ValueError):
    """A configuration value that the service cannot start with."""


def text(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name, default).strip()


def integer(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def number(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    minimum: float = 0.0,
    maximum: float | None = None,
) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value != value or value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"{name} must be {bound}, got {raw!r}")
    return value


def environment() -> Mapping[str, str]:
    """The process environment; a seam so tests can pass a plain dict instead."""
    return os.environ
