"""Reading settings from the environment, with errors that name the variable.

Secrets (tokens, keys) are read where they are used and never echoed back in errors.
"""

from __future__ import annotations

from collections.abc import Mapping


class ConfigError(ValueError):
    """A setting in the environment is missing or malformed; the message says which and why."""


def env_int(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    """``name`` as a whole number of at least ``minimum``, or ``default`` when unset."""
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {text!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    """``name`` as a non-negative number of seconds, or ``default`` when unset."""
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {text!r}") from None
    if not value >= 0:  # also refuses NaN
        raise ConfigError(f"{name} must not be negative")
    return value
