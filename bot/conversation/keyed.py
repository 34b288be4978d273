"""Per-key values that live only while in use: one lock per chat, one wakeup per conversation.

The engine and the adapters keep things per chat (a lock that keeps a channel's events in
order, an event that wakes the turns waiting for a conversation). A plain ``dict`` would keep
one for every chat ever seen; :class:`InUse` forgets a key's value when its last user is done.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["InUse", "KeyedLocks"]

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class _Entry(Generic[_V]):
    __slots__ = ("users", "value")

    def __init__(self, value: _V) -> None:
        self.value = value
        self.users = 0


class InUse(Generic[_K, _V]):
    """A value per key, made by ``make`` on first use and forgotten when its last user is
    done (or when it is :meth:`retire`\\ d)."""

    def __init__(self, make: Callable[[], _V]) -> None:
        self._make = make
        self._entries: dict[_K, _Entry[_V]] = {}

    def __len__(self) -> int:
        """How many keys have a value in use."""
        return len(self._entries)

    @contextlib.contextmanager
    def using(self, key: _K) -> Iterator[_V]:
        """``key``'s value, shared with everyone else using it meanwhile."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(self._make())
        entry.users += 1
        try:
            yield entry.value
        finally:
            entry.users -= 1
            # A retired entry may have been replaced by a new one meanwhile: leave that be.
            if entry.users == 0 and self._entries.get(key) is entry:
                del self._entries[key]

    def retire(self, key: _K) -> _V | None:
        """Forget ``key``'s value now and return it (``None`` if nobody uses it): its
        current users keep it, the next one gets a new value."""
        entry = self._entries.pop(key, None)
        return None if entry is None else entry.value


class KeyedLocks(Generic[_K]):
    """An :class:`asyncio.Lock` per key, kept while someone holds it or waits for it.
    Waiters on one key get the lock in the order they asked."""

    def __init__(self) -> None:
        self._locks: InUse[_K, asyncio.Lock] = InUse(asyncio.Lock)

    def __len__(self) -> int:
        """How many keys have a lock that is held or awaited."""
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: _K) -> AsyncIterator[None]:
        """Hold ``key``'s lock for the ``async with`` block."""
        with self._locks.using(key) as lock:
            async with lock:
                yield
