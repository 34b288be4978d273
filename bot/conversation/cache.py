"""A small expiring cache for values read from the database that other processes may change."""

from __future__ import annotations

import time
from typing import Generic, TypeVar

_K = TypeVar("_K")
_V = TypeVar("_V")


class TimedCache(Generic[_K, _V]):
    """A dict whose entries are forgotten ``seconds`` after they were put."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._entries: dict[_K, tuple[float, _V]] = {}

    def get(self, key: _K) -> tuple[_V] | None:
        """``(value,)`` while fresh, else ``None`` (so a cached ``None`` is still a hit)."""
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > self._seconds:
            return None
        return (entry[1],)

    def put(self, key: _K, value: _V) -> _V:
        """Remember ``value`` for ``key``; returns it."""
        self._entries[key] = (time.monotonic(), value)
        return value

    def drop(self, key: _K) -> None:
        """Forget ``key``."""
        self._entries.pop(key, None)
