"""Database URLs, and running database work from async code on SQLite or PostgreSQL.

A :class:`Database` runs a plain function on a SQLAlchemy :class:`~sqlalchemy.Connection` (in
one transaction for writes, without one for single-statement reads) and hands back its result.
Every query in the storage layer is such a function, so it is written once for both backends:

* PostgreSQL (``asyncpg``): :meth:`AsyncConnection.run_sync` on an async engine.
* SQLite: the whole function runs on a worker thread with the standard ``sqlite3`` driver.
  That is what ``aiosqlite`` does too, but aiosqlite crosses threads for every cursor,
  statement, fetch and commit; one crossing per transaction made a stored message about six
  times cheaper (0.45 ms instead of 2.9 ms here). ``sqlite+aiosqlite://`` URLs run this way.

SQLite connections get WAL (readers never wait for the writer), a busy timeout (another process
may hold the write lock for a moment) and enforced foreign keys. Writers run one at a time, in
arrival order, on a single thread, and open with ``BEGIN IMMEDIATE`` so that a writer in another
process makes them wait rather than fail.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import URL, Connection, Engine, event, make_url
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.storage.errors import StorageError

#: Where the data goes when ``DATABASE_URL`` is unset: a file in the working directory.
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///troupe.sqlite3"

# Plain driver names people write, mapped to the drivers Troupe runs on.
_DRIVERS = {
    "sqlite": "sqlite+pysqlite",
    "sqlite+aiosqlite": "sqlite+pysqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
}

_BUSY_TIMEOUT_MS = 5_000
_SQLITE_READERS = 2

_T = TypeVar("_T")


def database_url_from_env(environ: Mapping[str, str] = os.environ) -> str:
    """``DATABASE_URL`` from the environment, or :data:`DEFAULT_DATABASE_URL`."""
    return environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


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


class Database(Protocol):
    """Runs functions of a connection, each in one transaction, from async code."""

    url: URL

    @property
    def dialect_name(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        ...

    async def read(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work``, which only reads, outside any transaction.

        Each statement sees the latest commits: meant for reads of one statement, which
        cost less this way (no ``BEGIN``/``COMMIT`` round trips).
        """
        ...

    async def write(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work`` in a transaction that writes; it commits if ``work`` returns."""
        ...

    async def dispose(self) -> None:
        """Close every connection; later calls of :meth:`read` and :meth:`write` fail."""
        ...


def open_database(url: URL, *, foreign_keys: bool = True) -> Database:
    """A :class:`Database` for ``url`` (from :func:`parse_url`).

    ``foreign_keys=False`` is for migrations only: SQLite cannot switch enforcement inside a
    transaction, and a batch migration that rebuilds a parent table would otherwise fire
    ``ON DELETE CASCADE`` on its children.
    """
    try:
        if url.get_backend_name() == "sqlite":
            return SQLiteDatabase(url, foreign_keys=foreign_keys)
        return AsyncDatabase(url)
    except (SQLAlchemyError, ImportError) as exc:
        raise StorageError(f"cannot use the database at {redacted(url)}: {exc}") from exc


class AsyncDatabase:
    """A :class:`Database` on an async driver (``asyncpg``)."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self._engine: AsyncEngine = create_async_engine(url, pool_size=10, max_overflow=20)
        # Same pool; connections checked out through it run statements without a transaction.
        self._autocommit = self._engine.execution_options(isolation_level="AUTOCOMMIT")
        self._closed = False

    @property
    def dialect_name(self) -> str:
        return self._engine.dialect.name

    async def read(self, work: Callable[[Connection], _T]) -> _T:
        if self._closed:
            raise StorageError("the storage is closed")
        async with _translated_errors(self.url), self._autocommit.connect() as connection:
            return await connection.run_sync(work)

    async def write(self, work: Callable[[Connection], _T]) -> _T:
        if self._closed:
            raise StorageError("the storage is closed")
        async with _translated_errors(self.url), self._engine.begin() as connection:
            return await connection.run_sync(work)

    async def dispose(self) -> None:
        self._closed = True
        await self._engine.dispose()


class SQLiteDatabase:
    """A :class:`Database` on a SQLite file: one writer thread and a few reader threads."""

    def __init__(self, url: URL, *, foreign_keys: bool = True) -> None:
        self.url = url
        assert url.database is not None  # parse_url refuses in-memory databases
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        self._engine = _sqlite_engine(url, foreign_keys=foreign_keys)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="troupe-sqlite-writer")
        self._readers = ThreadPoolExecutor(_SQLITE_READERS, thread_name_prefix="troupe-sqlite")
        self._closed = False

    @property
    def dialect_name(self) -> str:
        return "sqlite"

    async def read(self, work: Callable[[Connection], _T]) -> _T:
        return await self._run(self._readers, work, None)

    async def write(self, work: Callable[[Connection], _T]) -> _T:
        return await self._run(self._writer, work, "BEGIN IMMEDIATE")

    async def _run(
        self, threads: ThreadPoolExecutor, work: Callable[[Connection], _T], begin: str | None
    ) -> _T:
        if self._closed:
            raise StorageError("the storage is closed")
        transaction = functools.partial(_in_transaction, self._engine, work, begin)
        async with _translated_errors(self.url):
            return await asyncio.get_running_loop().run_in_executor(threads, transaction)

    async def dispose(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Work already queued finishes first: the writer thread takes jobs in order.
        await asyncio.get_running_loop().run_in_executor(self._writer, self._engine.dispose)
        self._writer.shutdown(wait=False)
        self._readers.shutdown(wait=False)


@asynccontextmanager
async def _translated_errors(url: URL) -> AsyncIterator[None]:
    try:
        yield
    except (SQLAlchemyError, OSError) as exc:
        # The driver's own words ("database is locked", …) without the SQL and its
        # parameters; the whole error stays chained for the logs.
        reason = getattr(exc, "orig", None) or exc
        raise StorageError(f"database error at {redacted(url)}: {reason}") from exc


def _in_transaction(engine: Engine, work: Callable[[Connection], _T], begin: str | None) -> _T:
    """Run ``work`` after ``begin`` (``None``: no BEGIN, every statement commits on its own)."""
    with engine.connect() as connection:
        connection.execution_options(troupe_begin=begin)
        with connection.begin():
            return work(connection)


def _use_wal(dbapi_connection: sqlite3.Connection) -> None:
    """Put the file in WAL mode (a lasting property of the file; a no-op once it is).

    Switching needs the file to itself for a moment: while another connection is creating
    the same new file, the switch can fail at once, without waiting the busy timeout.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = dbapi_connection.execute("PRAGMA journal_mode=WAL").fetchone()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            mode = None
        if mode == ("wal",):
            return
        if time.monotonic() > deadline:
            raise StorageError(f"the SQLite file cannot be switched to WAL mode (it is {mode})")
        time.sleep(0.01)


def _sqlite_engine(url: URL, *, foreign_keys: bool) -> Engine:
    engine = create_sync_engine(url)
    pragmas = (
        f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}",
        # In WAL mode NORMAL cannot corrupt the file and saves an fsync per commit; a power
        # cut (not a crash of the process) may lose the last commits.
        "PRAGMA synchronous=NORMAL",
        f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}",
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # SQLAlchemy, not the driver, emits BEGIN: the driver would commit DDL behind
        # Alembic's back and start reads outside any transaction.
        dbapi_connection.isolation_level = None
        for pragma in pragmas:
            dbapi_connection.execute(pragma)
        _use_wal(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        begin = connection.get_execution_options().get("troupe_begin", "BEGIN")
        if begin:
            connection.exec_driver_sql(begin)

    return engine
