"""What the SQLite default promises: a file, WAL, and patience with writers in other processes."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.storage import (
    DEFAULT_DATABASE_URL,
    NewMessage,
    Storage,
    StorageError,
    database_url_from_env,
    open_storage,
)


@pytest.fixture
async def sqlite_storage(tmp_path: Path) -> AsyncIterator[tuple[Storage, Path]]:
    path = tmp_path / "troupe.sqlite3"
    storage = await open_storage(f"sqlite+aiosqlite:///{path}")
    yield storage, path
    await storage.close()


def test_default_url_and_environment() -> None:
    assert DEFAULT_DATABASE_URL == "sqlite+aiosqlite:///troupe.sqlite3"
    assert database_url_from_env({}) == DEFAULT_DATABASE_URL
    assert database_url_from_env({"DATABASE_URL": ""}) == DEFAULT_DATABASE_URL
    assert database_url_from_env({"DATABASE_URL": "postgresql://db/x"}) == "postgresql://db/x"


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

    holder = threading.Thread(target=other_process)
    holder.start()
    assert locked.wait(5)
    started = time.monotonic()
    stored = await storage.add_message(NewMessage(conversation.id, "user", "u", "U", "patience"))
    waited = time.monotonic() - started
    holder.join(5)

    assert waited >= 0.2
    assert [m.id for m in await storage.history_window(conversation.id, 5)] == [stored.id]


async def test_reads_go_on_while_another_process_writes(
    sqlite_storage: tuple[Storage, Path],
) -> None:
    storage, path = sqlite_storage
    conversation = await storage.conversation("discord", "c", default_character="aria")
    await storage.add_message(NewMessage(conversation.id, "user", "u", "U", "committed"))

    with sqlite3.connect(path, isolation_level=None) as connection:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("UPDATE messages SET text = 'uncommitted'")
        started = time.monotonic()
        [message] = await storage.history_window(conversation.id, 5)
        assert time.monotonic() - started < 0.2  # WAL: no waiting for the writer
        connection.execute("ROLLBACK")
    assert message.text == "committed"
