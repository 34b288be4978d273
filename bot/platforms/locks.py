"""One lock per chat, kept only while it is in use.

Adapters serialise work per channel or group (events in the order the platform sent them, one
webhook lookup at a time). A plain ``dict`` of locks would keep one for every chat the bot has
ever seen; :class:`KeyedLocks` forgets a key's lock when nobody holds or waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Hashable
from typing import Generic, TypeVar

__all__ = ["KeyedLocks"]

_K = TypeVar("_K", bound=Hashable)


class KeyedLocks(Generic[_K]):
    """An :class:`asyncio.Lock` per key, created on first use and dropped when released
    with no one waiting. Waiters on one key get the lock in the order they asked."""

    def __init__(self) -> None:
        #: Per key: the lock and how many tasks hold it or wait for it.
        self._locks: dict[_K, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        """How many keys have a lock that is held or awaited."""
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: _K) -> AsyncIterator[None]:
        """Hold ``key``'s lock for the ``async with`` block."""
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            # Cancelled while waiting or done: either way, one user fewer.
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
