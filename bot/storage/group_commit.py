"""Group commit: SQLite's writers one transaction at a time, those that queued meanwhile together.

SQLite has one writer at a time, so a process's writes wait in line anyway. When many arrive at
once (a hundred channels whose replies end together), each transaction's own ``BEGIN`` and
``COMMIT``, and its wait for the event loop between them, are what makes the line slow. Here
the writer whose turn it is takes every write queued behind it (up to :data:`MOST_PER_COMMIT`)
into one transaction, in arrival order: each still sees the writes before it, and gets its
own result.

If one of them fails, the transaction is rolled back and each runs again alone, so a failure
is only its own caller's. Work functions are plain functions of the connection, which makes
running one again safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

_T = TypeVar("_T")

#: The most writes one transaction takes: a transaction holds SQLite's write lock, which
#: another process (``troupe chat`` beside the bot) may be waiting for.
MOST_PER_COMMIT = 64

_Queued = tuple[Callable[[Connection], Any], "asyncio.Future[Any]"]


class GroupCommit:
    """Runs writes on ``engine`` one transaction at a time, in arrival order; the writes
    that queue while a transaction runs commit together in the next one."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._queue: list[_Queued] = []
        self._turn = asyncio.Lock()  # first come, first served

    async def write(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work`` in a transaction (perhaps shared with others queued beside it) and
        return its result once that transaction committed."""
        done: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._queue.append((work, done))
        async with self._turn:
            if not done.done():  # else an earlier writer took it along
                batch = self._queue[:MOST_PER_COMMIT]
                del self._queue[:MOST_PER_COMMIT]
                await self._commit(batch)
        return done.result()

    async def _commit(self, batch: list[_Queued]) -> None:
        def run_all(connection: Connection) -> list[Any]:
            return [work(connection) for work, _ in batch]

        try:
            async with self._engine.begin() as connection:
                results = await connection.run_sync(run_all)
        except BaseException as error:
            if not isinstance(error, Exception):  # cancelled, or the process is ending
                for _, done in batch:
                    done.cancel()
                raise
            if len(batch) == 1:
                batch[0][1].set_exception(error)
                return
            for queued in batch:  # rolled back: each again, alone
                await self._commit([queued])
            return
        for (_, done), result in zip(batch, results, strict=True):
            done.set_result(result)
