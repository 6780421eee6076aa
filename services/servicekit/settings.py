"""Typed reads of environment variables, failing fast with a message that names the variable."""

import math
import os
from collections.abc import Mapping


class ConfigError(ValueError):
    """A configuration value that the service cannot start with."""


def text(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name, default).strip()


def flag(env: Mapping[str, str], name: str) -> bool:
    """An opt-in switch: true/false (also 1/0, yes/no); unset is false."""
    raw = env.get(name, "").strip().lower()
    if raw in ("", "false", "0", "no"):
        return False
    if raw in ("true", "1", "yes"):
        return True
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


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
    positive: bool = False,
) -> float:
    """A finite number in [minimum, maximum]; above zero too when `positive` (timeouts)."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if (
        not math.isfinite(value)
        or value < minimum
        or (maximum is not None and value > maximum)
        or (positive and value <= 0)
    ):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        bound = f"a finite number {'> 0' if positive else bound}"
        raise ConfigError(f"{name} must be {bound}, got {raw!r}")
    return value


def environment() -> Mapping[str, str]:
    """The process environment; a seam so tests can pass a plain dict instead."""
    return os.environ
