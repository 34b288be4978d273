"""Database URLs, and running database work from async code on SQLite or PostgreSQL.

A :class:`Database` runs a plain function on a SQLAlchemy :class:`~sqlalchemy.Connection` (in
one transaction for writes, without one for reads) and hands back its result. Every query in
the storage layer is such a function, so it is written once for both backends. It runs through
SQLAlchemy's async engine with :meth:`~sqlalchemy.ext.asyncio.AsyncConnection.run_sync`, on
``asyncpg`` or ``aiosqlite``: the event loop never waits for the database.

SQLite connections (:mod:`bot.storage.sqlite`) get WAL (readers never wait for the writer), a
busy timeout (another process may hold the write lock for a moment), enforced foreign keys, and
cursors that run a statement in one trip to aiosqlite's thread. Writers run one transaction at a
time, in arrival order, those that queued meanwhile together (:mod:`bot.storage.group_commit`),
and open with ``BEGIN IMMEDIATE``, so that a writer in another process makes them wait rather
than fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import URL, Connection, event, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from bot.storage.errors import StorageError
from bot.storage.group_commit import GroupCommit
from bot.storage.notify import NotificationListener
from bot.storage.sqlite import connect_sqlite

# Plain driver names people write, mapped to the drivers Troupe runs on.
_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
}

_T = TypeVar("_T")


def parse_url(database_url: str) -> URL:
    """Parse a database URL and pick the driver Troupe runs it with.

    Errors never repeat the URL: it may hold a password.
    """
    try:
        url = make_url(database_url)
    except (ArgumentError, ValueError):
        raise StorageError("DATABASE_URL is not a valid database URL") from None
    url = url.set(drivername=_DRIVERS.get(url.drivername, url.drivername))
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise StorageError("an in-memory SQLite database is not supported; name a file")
    return url


def redacted(url: URL) -> str:
    """The URL as text with its password replaced by ``***``."""
    return url.render_as_string(hide_password=True)


def open_database(url: URL, *, foreign_keys: bool = True) -> Database:
    """A :class:`Database` for ``url`` (from :func:`parse_url`).

    ``foreign_keys=False`` is for migrations only: SQLite cannot switch enforcement inside a
    transaction, and a batch migration that rebuilds a parent table would otherwise fire
    ``ON DELETE CASCADE`` on its children.
    """
    try:
        return Database(url, foreign_keys=foreign_keys)
    except (SQLAlchemyError, ImportError) as exc:
        raise StorageError(f"cannot use the database at {redacted(url)}: {exc}") from exc


class Database:
    """Runs functions of a connection, each in one transaction (on SQLite a write may share
    it with writes queued beside it), from async code.

    Work once handed over runs to its end even if its caller is cancelled meanwhile (its
    result is then dropped), so a cancelled caller never leaves a transaction half done.
    """

    def __init__(self, url: URL, *, foreign_keys: bool = True) -> None:
        self.url = url
        # parse_url refuses in-memory SQLite: a SQLite URL names a file.
        sqlite_file = url.database if url.get_backend_name() == "sqlite" else None
        # Every connection ends its own transaction: no rollback when it goes back to the pool.
        self._engine: AsyncEngine = create_async_engine(
            url,
            poolclass=AsyncAdaptedQueuePool,  # a SQLite file's default only since 2.0.38
            pool_size=10,
            max_overflow=20,
            pool_reset_on_return=None,
            # Troupe opens SQLite connections itself (bot.storage.sqlite), asyncpg its own.
            async_creator=(
                functools.partial(connect_sqlite, sqlite_file, foreign_keys=foreign_keys)
                if sqlite_file
                else None
            ),
        )
        self._reads: AsyncEngine
        self._writes: AsyncEngine
        self._notifications: NotificationListener | None = None
        self._group_commit: GroupCommit | None = None
        if sqlite_file:
            Path(sqlite_file).parent.mkdir(parents=True, exist_ok=True)
            _set_up_sqlite(self._engine)
            self._reads = self._engine.execution_options(troupe_begin=None)
            self._writes = self._engine.execution_options(troupe_begin="BEGIN IMMEDIATE")
            # SQLite has one writer at a time: the others queue here, in order, rather than
            # in SQLite's busy handler, which polls.
            self._group_commit = GroupCommit(self._writes)
        else:
            # Same pool; connections checked out through it run statements without a
            # transaction.
            self._reads = self._engine.execution_options(isolation_level="AUTOCOMMIT")
            self._writes = self._engine
            self._notifications = NotificationListener(self._reads.connect)
        self._under_way: set[asyncio.Task[Any]] = set()
        self._closed = False

    @property
    def dialect_name(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    async def read(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work``, which only reads, outside any transaction.

        Each statement sees the latest commits: meant for reads of one statement, which
        cost less this way (no ``BEGIN``/``COMMIT`` round trips).
        """
        return await self._run(self._read(work))

    async def write(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work`` in a transaction that writes; it commits if ``work`` returns.

        On SQLite the transaction may hold other writes queued beside this one; if one of
        them fails, each runs again alone (:mod:`bot.storage.group_commit`), so ``work`` must
        do nothing but its statements.
        """
        return await self._run(self._write(work))

    async def _read(self, work: Callable[[Connection], _T]) -> _T:
        async with self._reads.connect() as connection:
            return await connection.run_sync(work)

    async def _write(self, work: Callable[[Connection], _T]) -> _T:
        if self._group_commit is not None:
            return await self._group_commit.write(work)
        async with self._writes.begin() as connection:
            return await connection.run_sync(work)

    async def _run(self, work: Coroutine[Any, Any, _T]) -> _T:
        if self._closed:
            work.close()
            raise StorageError("the storage is closed")
        task: asyncio.Task[_T] = asyncio.ensure_future(work)
        self._under_way.add(task)
        task.add_done_callback(self._under_way.discard)
        with _translated_errors(self.url):
            return await asyncio.shield(task)

    async def listen(self, channel: str, heard: Callable[[str], None]) -> bool:
        """Call ``heard`` with the payload of every notification on ``channel`` (PostgreSQL's
        ``NOTIFY``), until :meth:`dispose`. ``False`` where the database has no such thing."""
        if self._notifications is None:
            return False
        if self._closed:
            raise StorageError("the storage is closed")
        try:
            await self._notifications.listen(channel, heard)
        except Exception as exc:  # asyncpg's own errors come straight from its connection
            raise StorageError(f"cannot listen at {redacted(self.url)}: {exc}") from exc
        return True

    async def dispose(self) -> None:
        """Let the work under way finish, then close every connection; later calls of
        :meth:`read` and :meth:`write` fail."""
        self._closed = True
        if self._under_way:
            await asyncio.wait(self._under_way)
        if self._notifications is not None:
            await self._notifications.close()
        await self._engine.dispose()


#: What a failing database raises, below :class:`StorageError`.
_DRIVER_ERRORS = (SQLAlchemyError, sqlite3.Error, OSError)


@contextlib.contextmanager
def _translated_errors(url: URL) -> Iterator[None]:
    try:
        yield
    except _DRIVER_ERRORS as exc:
        # The driver's own words ("database is locked", …) without the SQL and its
        # parameters; the whole error stays chained for the logs.
        reason = getattr(exc, "orig", None) or exc
        raise StorageError(f"database error at {redacted(url)}: {reason}") from exc


def _set_up_sqlite(engine: AsyncEngine) -> None:
    """Have every transaction of ``engine`` begin as its execution options say
    (``troupe_begin``)."""

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        begin = connection.get_execution_options().get("troupe_begin", "BEGIN")
        if begin:
            # Straight to the driver: one trip to its thread, not a cursor's.
            connection.connection.dbapi_connection.run_async(  # type: ignore[union-attr]
                lambda driver: driver.execute(begin)
            )
