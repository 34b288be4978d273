"""What the SQLite default promises: a file, WAL, and patience with writers in other processes."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Connection, text

from bot.settings import Settings
from bot.storage import (
    DEFAULT_DATABASE_URL,
    NewMessage,
    Storage,
    StorageError,
    open_storage,
)
from bot.storage.database import Database, open_database, parse_url


@pytest.fixture
async def sqlite_storage(tmp_path: Path) -> AsyncIterator[tuple[Storage, Path]]:
    path = tmp_path / "troupe.sqlite3"
    storage = await open_storage(f"sqlite+aiosqlite:///{path}")
    yield storage, path
    await storage.close()


def database_url_from(environ: dict[str, str]) -> str:
    return Settings.from_environ(environ).storage.database_url


def test_default_url_and_environment() -> None:
    assert DEFAULT_DATABASE_URL == "sqlite+aiosqlite:///troupe.sqlite3"
    assert database_url_from({}) == DEFAULT_DATABASE_URL
    assert database_url_from({"DATABASE_URL": ""}) == DEFAULT_DATABASE_URL
    assert database_url_from({"DATABASE_URL": "postgresql://db/x"}) == "postgresql://db/x"


@pytest.mark.parametrize("url", ["sqlite://", "sqlite+aiosqlite:///:memory:"])
async def test_in_memory_databases_are_refused(url: str) -> None:
    with pytest.raises(StorageError, match="in-memory"):
        await open_storage(url)


async def test_the_file_is_in_wal_mode(sqlite_storage: tuple[Storage, Path]) -> None:
    _, path = sqlite_storage
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_a_writer_waits_for_another_process_holding_the_lock(
    sqlite_storage: tuple[Storage, Path],
) -> None:
    storage, path = sqlite_storage
    conversation = await storage.conversation("discord", "c", default_character="aria")
    locked = threading.Event()

    def other_process() -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(0.3)
        connection.execute("COMMIT")
        connection.close()

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    holder = threading.Thread(target=other_process)
    holder.start()
    assert locked.wait(5)
    ticking = asyncio.create_task(ticker())
    started = time.monotonic()
    stored = await storage.add_message(NewMessage(conversation.id, "user", "u", "U", "patience"))
    waited = time.monotonic() - started
    ticking.cancel()
    holder.join(5)

    assert waited >= 0.2
    # The wait happened off the event loop: other tasks went on meanwhile.
    assert ticks >= 10
    assert [m.id for m in await storage.history_window(conversation.id, 5)] == [stored.id]


async def test_the_write_ahead_log_is_checkpointed_as_writes_go_on(
    sqlite_storage: tuple[Storage, Path],
) -> None:
    storage, path = sqlite_storage
    wal = path.with_name(path.name + "-wal")
    conversation = await storage.conversation("discord", "c", default_character="aria")

    async def write(count: int) -> None:
        for n in range(count):
            text = f"line {n} " + "x" * 4000
            await storage.add_message(NewMessage(conversation.id, "user", "u", "U", text))

    # A round writes more than SQLite's automatic checkpoint waits for (1,000 pages).
    await write(500)
    one_round = wal.stat().st_size
    await write(1500)
    # After a checkpoint the log starts again at its beginning; without one it would have
    # grown to about four times its size after the first round.
    assert wal.stat().st_size < 2 * one_round


async def test_writers_take_turns_in_the_order_they_came(
    sqlite_storage: tuple[Storage, Path],
) -> None:
    # One SQLite file has one writer at a time; the others queue in the process, not in
    # SQLite's busy handler, where they would go in any order or give up.
    storage, _ = sqlite_storage
    conversation = await storage.conversation("discord", "c", default_character="aria")
    burst = await asyncio.gather(
        *(
            storage.add_message(NewMessage(conversation.id, "user", "u", "U", f"m{n}"))
            for n in range(200)
        )
    )
    assert [m.text for m in sorted(burst, key=lambda m: m.id)] == [f"m{n}" for n in range(200)]


WRITER = """
import asyncio, sys
from bot.storage import NewMessage, open_storage

async def main(url, name):
    storage = await open_storage(url)
    conversation = await storage.conversation("discord", "shared", default_character="aria")
    for i in range(100):
        await storage.add_message(NewMessage(conversation.id, "user", name, name, f"{name}-{i}"))
    await storage.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_several_processes_write_to_one_file(sqlite_url: str) -> None:
    # Each process migrates at start and creates the conversation if it is missing.
    processes = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, sqlite_url, f"p{n}")
        for n in range(3)
    ]
    codes = await asyncio.wait_for(asyncio.gather(*(p.wait() for p in processes)), timeout=60)
    assert codes == [0, 0, 0]

    storage = await open_storage(sqlite_url, migrate=False)
    try:
        conversation = await storage.conversation("discord", "shared", default_character="x")
        window = await storage.history_window(conversation.id, 1000)
    finally:
        await storage.close()
    assert len(window) == 300
    for n in range(3):
        mine = [m.text for m in window if m.author_id == f"p{n}"]
        assert mine == [f"p{n}-{i}" for i in range(100)]


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:///x.sqlite3", "sqlite+aiosqlite"),
        ("sqlite+pysqlite:///x.sqlite3", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///x.sqlite3", "sqlite+aiosqlite"),
        ("postgres://u@h/db", "postgresql+asyncpg"),
        ("postgresql://u@h/db", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg"),
    ],
)
def test_urls_get_the_driver_troupe_runs(given: str, driver: str) -> None:
    assert parse_url(given).drivername == driver


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """A bare :class:`Database` on a new SQLite file, for statements of the test's own."""
    opened = open_database(parse_url(f"sqlite:///{tmp_path / 'bare.sqlite3'}"))
    yield opened
    await opened.dispose()


class Trips:
    """Counts the calls that each cost one trip to aiosqlite's thread, by kind."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: dict[str, int] = {}
        for owner, name in (
            (aiosqlite.Connection, "cursor"),
            (aiosqlite.Connection, "execute"),
            (aiosqlite.Connection, "commit"),
            (aiosqlite.Connection, "rollback"),
            (aiosqlite.Cursor, "fetchall"),
        ):
            monkeypatch.setattr(owner, name, self._counted(name, getattr(owner, name)))

    def _counted(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.counts[name] = self.counts.get(name, 0) + 1
            return call(*args, **kwargs)

        return counted


async def test_a_statement_is_one_trip_to_the_thread_and_its_rows_one_more(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await database.write(lambda c: c.execute(text("CREATE TABLE t (x TEXT)")))
    trips = Trips(monkeypatch)

    def insert(connection: Connection) -> int | None:
        result = connection.execute(text("INSERT INTO t (x) VALUES ('a'), ('b')"))
        return result.rowcount

    assert await database.write(insert) == 2
    # BEGIN IMMEDIATE and the INSERT, then the COMMIT; no cursor of aiosqlite's own.
    assert trips.counts == {"execute": 2, "commit": 1}

    trips.counts.clear()
    rows = await database.read(lambda c: c.execute(text("SELECT x FROM t")).all())
    assert [row.x for row in rows] == ["a", "b"]
    # A read opens no transaction, so there is nothing to roll back.
    assert trips.counts == {"execute": 1, "fetchall": 1}


async def test_a_failing_write_rolls_back_on_the_same_connection(database: Database) -> None:
    await database.write(lambda c: c.execute(text("CREATE TABLE t (x TEXT UNIQUE)")))

    def twice(connection: Connection) -> None:
        connection.execute(text("INSERT INTO t (x) VALUES ('a')"))
        connection.execute(text("INSERT INTO t (x) VALUES ('a')"))

    with pytest.raises(StorageError, match="UNIQUE"):
        await database.write(twice)
    rows = await database.read(lambda c: c.execute(text("SELECT x FROM t")).all())
    assert rows == []


LEFT_OPEN = """
import asyncio, sys
from bot.storage import open_storage

async def main(url):
    storage = await open_storage(url)
    await storage.conversation("discord", "c", default_character="aria")
    # No storage.close(): a crash out of the main coroutine looks like this.

asyncio.run(main(sys.argv[1]))
"""


async def test_a_process_that_never_closed_its_storage_still_exits(sqlite_url: str) -> None:
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", LEFT_OPEN, sqlite_url)
    assert await asyncio.wait_for(process.wait(), timeout=60) == 0


async def test_writes_that_queue_together_commit_together_each_with_its_result(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await database.write(lambda c: c.execute(text("CREATE TABLE t (n INTEGER)")))
    trips = Trips(monkeypatch)

    def insert(n: int) -> Callable[[Connection], int]:
        def work(connection: Connection) -> int:
            connection.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
            # Each write sees the ones queued before it.
            return int(connection.execute(text("SELECT count(*) FROM t")).scalar_one())

        return work

    counts = await asyncio.gather(*(database.write(insert(n)) for n in range(40)))
    assert counts == list(range(1, 41))
    # The first write commits alone; the 39 that queued behind it commit together.
    assert trips.counts["commit"] == 2
    rows = await database.read(lambda c: c.execute(text("SELECT n FROM t")).scalars().all())
    assert rows == list(range(40))


async def test_a_failing_write_among_queued_ones_fails_alone(database: Database) -> None:
    await database.write(lambda c: c.execute(text("CREATE TABLE t (n INTEGER UNIQUE)")))

    def insert(n: int) -> Callable[[Connection], int]:
        def work(connection: Connection) -> int:
            connection.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
            return n

        return work

    outcomes = await asyncio.gather(
        *(database.write(insert(n)) for n in (1, 2, 3, 2, 4)), return_exceptions=True
    )
    assert outcomes[:3] == [1, 2, 3]
    assert isinstance(outcomes[3], StorageError)
    assert "UNIQUE" in str(outcomes[3])
    assert outcomes[4] == 4
    rows = await database.read(lambda c: c.execute(text("SELECT n FROM t")).scalars().all())
    assert sorted(rows) == [1, 2, 3, 4]
