"""A small expiring cache for values read from the database that other processes may change."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

_K = TypeVar("_K")
_V = TypeVar("_V")

#: Entries held before the first sweep of expired ones.
_FIRST_SWEEP = 1024


class TimedCache(Generic[_K, _V]):
    """A dict whose entries are forgotten ``seconds`` after they were put (or after the
    ``seconds`` given to :meth:`put` for that entry).

    Expired entries are swept out whenever the cache has doubled since the last sweep, so a
    bot that has seen a million chats over the months does not keep them all.
    """

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        #: Each entry with the time it expires.
        self._entries: dict[_K, tuple[float, _V]] = {}
        self._sweep_at = _FIRST_SWEEP

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: _K) -> tuple[_V] | None:
        """``(value,)`` while fresh, else ``None`` (so a cached ``None`` is still a hit)."""
        entry = self._entries.get(key)
        if entry is None or self._clock() > entry[0]:
            return None
        return (entry[1],)

    def put(self, key: _K, value: _V, *, seconds: float | None = None) -> _V:
        """Remember ``value`` for ``key`` (for ``seconds``, else the cache's); returns it."""
        now = self._clock()
        self._entries[key] = (now + (self._seconds if seconds is None else seconds), value)
        if len(self._entries) >= self._sweep_at:
            self._entries = {k: entry for k, entry in self._entries.items() if now <= entry[0]}
            self._sweep_at = max(_FIRST_SWEEP, 2 * len(self._entries))
        return value

    def drop(self, key: _K) -> None:
        """Forget ``key``."""
        self._entries.pop(key, None)
