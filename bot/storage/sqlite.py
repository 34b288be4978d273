"""Connections to a SQLite file: aiosqlite, set up for Troupe, one trip per statement.

aiosqlite runs each call on the connection's own thread; every trip there and back costs a
thread switch and a wake-up of the event loop, which is most of what a statement costs.
SQLAlchemy's aiosqlite dialect opens, runs, fetches and closes a cursor per statement: four
trips. :class:`StatementConnection` hands it a :class:`StatementCursor` instead, which runs
the statement in one trip (:meth:`aiosqlite.Connection.execute`) and reads its rows in a
second, and skips ``COMMIT``/``ROLLBACK`` when no transaction is open (reads start none).
Everything else is aiosqlite's own.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import aiosqlite

from bot.storage.errors import StorageError

#: How long a connection waits for another process's write lock before it fails.
BUSY_TIMEOUT_MS = 5_000


async def connect_sqlite(path: str, *, foreign_keys: bool) -> StatementConnection:
    """A connection to the file at ``path``, set up: a busy timeout, foreign keys enforced
    (unless ``foreign_keys=False``), ``synchronous=NORMAL``, WAL mode.

    The driver never begins or commits on its own (``isolation_level=None``): the storage
    layer emits ``BEGIN``, so that DDL is not committed behind Alembic's back and reads start
    no transaction.
    """
    connection = StatementConnection(path)
    await connection  # starts its thread and opens the file
    try:
        pragmas = (
            f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
            # In WAL mode NORMAL cannot corrupt the file and saves an fsync per commit; a
            # power cut (not a crash of the process) may lose the last commits.
            "PRAGMA synchronous=NORMAL",
            f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}",
        )
        for pragma in pragmas:
            await connection.execute(pragma)
        await _use_wal(connection)
    except BaseException:
        await connection.close()
        raise
    return connection


async def _use_wal(connection: aiosqlite.Connection) -> None:
    """Put the file in WAL mode (a lasting property of the file; a no-op once it is).

    Switching needs the file to itself for a moment: while another connection is creating
    the same new file, the switch can fail at once, without waiting the busy timeout.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            async with connection.execute("PRAGMA journal_mode=WAL") as cursor:
                mode = await cursor.fetchone()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            mode = None
        if mode == ("wal",):
            return
        if loop.time() > deadline:
            raise StorageError(f"the SQLite file cannot be switched to WAL mode (it is {mode})")
        await asyncio.sleep(0.01)


class StatementConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors run a statement in one trip to its thread."""

    def __init__(self, path: str) -> None:
        self._sqlite_path = path
        self._sqlite: sqlite3.Connection | None = None
        super().__init__(self._open_file, iter_chunk_size=64)
        # As SQLAlchemy does for the connections it opens itself: a connection left open
        # must not keep the process alive at exit.
        self._thread.daemon = True

    def _open_file(self) -> sqlite3.Connection:
        # Runs on the connection's thread, which then owns the sqlite3 connection.
        self._sqlite = sqlite3.connect(self._sqlite_path, isolation_level=None)
        return self._sqlite

    def cursor(self) -> StatementCursor:  # type: ignore[override]
        """A cursor that costs no trip until it runs a statement."""
        return StatementCursor(self)

    @property
    def _in_transaction(self) -> bool:
        return self._sqlite is not None and self._sqlite.in_transaction

    async def commit(self) -> None:
        """Commit the open transaction, if there is one."""
        if self._in_transaction:
            await super().commit()

    async def rollback(self) -> None:
        """Roll the open transaction back, if there is one."""
        if self._in_transaction:
            await super().rollback()


class StatementCursor:
    """The cursor SQLAlchemy drives: each statement runs in one trip, its rows come in a
    second. Only what SQLAlchemy's aiosqlite dialect calls on a client-side cursor (Troupe
    uses no server-side ones)."""

    arraysize = 1

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection
        self._cursor: aiosqlite.Cursor | None = None

    async def __aenter__(self) -> StatementCursor:
        return self

    @property
    def _ran(self) -> aiosqlite.Cursor:
        if self._cursor is None:
            raise sqlite3.ProgrammingError("no statement has run on this cursor")
        return self._cursor

    @property
    def description(self) -> Any:
        """The columns of the last statement's rows (``None``: it returns none)."""
        return None if self._cursor is None else self._cursor.description

    @property
    def rowcount(self) -> int:
        """The rows the last statement changed."""
        return self._ran.rowcount

    @property
    def lastrowid(self) -> int | None:
        """The rowid the last ``INSERT`` made."""
        return self._ran.lastrowid

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> StatementCursor:
        """Run one statement."""
        self._cursor = await self._connection.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> StatementCursor:
        """Run one statement for each set of parameters."""
        self._cursor = await self._connection.executemany(sql, parameters)
        return self

    async def fetchall(self) -> Sequence[Any]:
        """The remaining rows."""
        return list(await self._ran.fetchall())

    async def close(self) -> None:
        """Nothing to do: the statement ended when its rows were read, and the row count
        stays readable afterwards, as SQLAlchemy expects."""
