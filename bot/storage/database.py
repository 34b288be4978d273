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

*Quick* work (:meth:`Database.quick_read`, :meth:`Database.quick_write`: a turn's few indexed
rows, through prebuilt :class:`~bot.storage.statements.Statements`) runs on SQLite right on the
event loop instead, straight on a ``sqlite3`` connection that never waits for a lock: a thread
crossing each way costs more than such a statement. When the lock is taken (another process
writes, or this process has writes queued) the work goes to the threads as above. That
connection does not checkpoint the WAL as it commits (a checkpoint writes and syncs the whole
log, too long to block the loop); the writer thread does it every :data:`CHECKPOINT_EVERY`
quick writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import URL, Connection, Engine, event, make_url
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.storage.errors import StorageError
from bot.storage.notify import NotificationListener
from bot.storage.statements import ConnectionStatements, SQLiteStatements, Statements

# Plain driver names people write, mapped to the drivers Troupe runs on.
_DRIVERS = {
    "sqlite": "sqlite+pysqlite",
    "sqlite+aiosqlite": "sqlite+pysqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
}

_BUSY_TIMEOUT_MS = 5_000
_SQLITE_READERS = 2
#: Quick writes between two WAL checkpoints (SQLite's own default is every 1,000 pages).
CHECKPOINT_EVERY = 500


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

    async def quick_read(self, work: Callable[[Statements], _T]) -> _T:
        """As :meth:`read`, for work that runs prebuilt statements on a few rows found
        through an index: on SQLite it runs without leaving the event loop."""
        ...

    async def quick_write(self, work: Callable[[Statements], _T]) -> _T:
        """As :meth:`write`, for work as in :meth:`quick_read`."""
        ...

    async def listen(self, channel: str, heard: Callable[[str], None]) -> bool:
        """Call ``heard`` with the payload of every notification on ``channel`` (PostgreSQL's
        ``NOTIFY``), until :meth:`dispose`. ``False`` where the database has no such thing."""
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
        self._notifications = NotificationListener(self._autocommit.connect)
        self._closed = False

    @property
    def dialect_name(self) -> str:
        return self._engine.dialect.name

    async def read(self, work: Callable[[Connection], _T]) -> _T:
        if self._closed:
            raise StorageError("the storage is closed")
        with _translated_errors(self.url):
            async with self._autocommit.connect() as connection:
                return await connection.run_sync(work)

    async def write(self, work: Callable[[Connection], _T]) -> _T:
        if self._closed:
            raise StorageError("the storage is closed")
        with _translated_errors(self.url):
            async with self._engine.begin() as connection:
                return await connection.run_sync(work)

    async def quick_read(self, work: Callable[[Statements], _T]) -> _T:
        return await self.read(_on_connection(work))

    async def quick_write(self, work: Callable[[Statements], _T]) -> _T:
        return await self.write(_on_connection(work))

    async def listen(self, channel: str, heard: Callable[[str], None]) -> bool:
        if self._closed:
            raise StorageError("the storage is closed")
        try:
            await self._notifications.listen(channel, heard)
        except Exception as exc:  # asyncpg's own errors come straight from its connection
            raise StorageError(f"cannot listen at {redacted(self.url)}: {exc}") from exc
        return True

    async def dispose(self) -> None:
        self._closed = True
        await self._notifications.close()
        await self._engine.dispose()


class SQLiteDatabase:
    """A :class:`Database` on a SQLite file: one writer thread and a few reader threads, and
    quick work on the event loop."""

    def __init__(self, url: URL, *, foreign_keys: bool = True) -> None:
        self.url = url
        assert url.database is not None  # parse_url refuses in-memory databases
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        self._foreign_keys = foreign_keys
        self._engine = _sqlite_engine(url, foreign_keys=foreign_keys)
        #: The connection quick work runs on, opened by the first of it.
        self._quick: SQLiteStatements | None = None
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="troupe-sqlite-writer")
        self._readers = ThreadPoolExecutor(_SQLITE_READERS, thread_name_prefix="troupe-sqlite")
        #: Writes handed to the writer thread and not finished: quick writes wait behind them.
        self._queued_writes = 0
        self._quick_writes = 0
        self._closed = False

    @property
    def dialect_name(self) -> str:
        return "sqlite"

    async def read(self, work: Callable[[Connection], _T]) -> _T:
        return await self._run(self._readers, work, None)

    async def write(self, work: Callable[[Connection], _T]) -> _T:
        return await self._on_the_writer(work)

    async def quick_read(self, work: Callable[[Statements], _T]) -> _T:
        if not self._closed:
            with contextlib.suppress(_Locked):
                return self._on_the_loop(work, None)
        return await self.read(_on_connection(work))

    async def quick_write(self, work: Callable[[Statements], _T]) -> _T:
        if not self._closed and self._queued_writes == 0:
            try:
                result = self._on_the_loop(work, "BEGIN IMMEDIATE")
            except _Locked:
                pass  # the writer thread waits for the lock
            else:
                self._quick_writes += 1
                if self._quick_writes % CHECKPOINT_EVERY == 0:
                    # The writer that fills the log pays for the checkpoint (as in SQLite's
                    # own), on the writer thread; writes that come meanwhile queue behind it,
                    # so that the next one starts the log afresh.
                    await self._on_the_writer(_checkpoint, begin=None)
                return result
        return await self.write(_on_connection(work))

    async def _on_the_writer(
        self, work: Callable[[Connection], _T], begin: str | None = "BEGIN IMMEDIATE"
    ) -> _T:
        self._queued_writes += 1
        try:
            return await self._run(self._writer, work, begin)
        finally:
            self._queued_writes -= 1

    def _on_the_loop(self, work: Callable[[Statements], _T], begin: str | None) -> _T:
        """Run ``work`` here and now; :class:`_Locked` (and nothing done: the transaction
        rolled back) when another connection holds the lock."""
        # A plain try, not _translated_errors: this runs two or three times in every turn.
        try:
            if self._quick is None:
                connection = _connect_on_the_loop(self.url, foreign_keys=self._foreign_keys)
                self._quick = SQLiteStatements(connection)
            statements = self._quick
            connection = statements.connection
            if not begin:
                return work(statements)  # every statement commits on its own
            connection.execute(begin)
            try:
                result = work(statements)
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
            return result
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise _Locked from exc
            raise _storage_error(self.url, exc) from exc
        except _DRIVER_ERRORS as exc:
            raise _storage_error(self.url, exc) from exc

    async def _run(
        self, threads: ThreadPoolExecutor, work: Callable[[Connection], _T], begin: str | None
    ) -> _T:
        if self._closed:
            raise StorageError("the storage is closed")
        transaction = functools.partial(_in_transaction, self._engine, work, begin)
        with _translated_errors(self.url):
            return await asyncio.get_running_loop().run_in_executor(threads, transaction)

    async def listen(self, channel: str, heard: Callable[[str], None]) -> bool:
        return False

    async def dispose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._quick is not None:
            self._quick.connection.close()
        # Work already queued finishes first: the writer thread takes jobs in order.
        await asyncio.get_running_loop().run_in_executor(self._writer, self._engine.dispose)
        self._writer.shutdown(wait=False)
        self._readers.shutdown(wait=False)


class _Locked(Exception):
    """Quick work met a lock: hand it to a thread, which waits for the lock."""


def _checkpoint(connection: Connection) -> None:
    """Copy the write-ahead log into the database file, as far as readers allow."""
    connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


#: What a failing database raises, below :class:`StorageError`.
_DRIVER_ERRORS = (SQLAlchemyError, sqlite3.Error, OSError)


@contextlib.contextmanager
def _translated_errors(url: URL) -> Iterator[None]:
    try:
        yield
    except _DRIVER_ERRORS as exc:
        raise _storage_error(url, exc) from exc


def _storage_error(url: URL, exc: Exception) -> StorageError:
    # The driver's own words ("database is locked", …) without the SQL and its
    # parameters; the whole error stays chained for the logs.
    reason = getattr(exc, "orig", None) or exc
    return StorageError(f"database error at {redacted(url)}: {reason}")


def _on_connection(work: Callable[[Statements], _T]) -> Callable[[Connection], _T]:
    """``work`` as a function of a SQLAlchemy connection."""
    return lambda connection: work(ConnectionStatements(connection))


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
    """An engine for ``url``, its connections set up by :func:`_set_up_sqlite`."""
    engine = create_sync_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        _set_up_sqlite(dbapi_connection, foreign_keys=foreign_keys)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        begin = connection.get_execution_options().get("troupe_begin", "BEGIN")
        if begin:
            connection.exec_driver_sql(begin)

    return engine


def _connect_on_the_loop(url: URL, *, foreign_keys: bool) -> sqlite3.Connection:
    """A connection for quick work on the event loop: it never waits for a lock and never
    checkpoints."""
    assert url.database is not None
    connection = sqlite3.connect(url.database, check_same_thread=False)
    _set_up_sqlite(connection, foreign_keys=foreign_keys, on_the_loop=True)
    return connection


def _set_up_sqlite(
    connection: sqlite3.Connection, *, foreign_keys: bool, on_the_loop: bool = False
) -> None:
    # Troupe, not the driver, emits BEGIN: the driver would commit DDL behind Alembic's back
    # and start reads outside any transaction.
    connection.isolation_level = None
    pragmas = (
        f"PRAGMA busy_timeout={0 if on_the_loop else _BUSY_TIMEOUT_MS}",
        f"PRAGMA wal_autocheckpoint={0 if on_the_loop else 1000}",
        # In WAL mode NORMAL cannot corrupt the file and saves an fsync per commit; a power
        # cut (not a crash of the process) may lose the last commits.
        "PRAGMA synchronous=NORMAL",
        f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}",
    )
    for pragma in pragmas:
        connection.execute(pragma)
    _use_wal(connection)
