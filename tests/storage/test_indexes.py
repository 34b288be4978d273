"""The history window is read from its index: no table scan, no sort, whatever the table's size.

The query plan is what makes the cost independent of the number of stored messages; the
measured comparison (100 vs 1,000,000 messages) is ``bench/history_window.py``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

from bot.storage import NewMessage, Storage, open_storage
from bot.storage.storage import HISTORY_WINDOW_QUERY
from tests.databases import Postgres, empty_postgres

INDEX = "ix_messages_conversation_id_input_flagged_delivery_id"


async def _fill(storage: Storage, conversations: int, per_conversation: int) -> int:
    """Interleave messages of several conversations; returns the first conversation's id."""
    ids = [
        (await storage.conversation("discord", f"c{i}", default_character="aria")).id
        for i in range(conversations)
    ]
    for i in range(per_conversation):
        for conversation_id in ids:
            message = await storage.add_message(
                NewMessage(conversation_id, "user", "u", "U", f"m{i}")
            )
            if i % 7 == 0:
                await storage.flag_message(message.id, 5)
            if i % 5 == 0:
                reply = NewMessage(conversation_id, "assistant", "c", "C", "r", delivery="pending")
                await storage.add_message(reply)  # never delivered: out of every window
    return ids[0]


async def test_sqlite_plan_is_one_index_search(tmp_path: Path) -> None:
    path = tmp_path / "troupe.sqlite3"
    storage = await open_storage(f"sqlite:///{path}")
    try:
        conversation_id = await _fill(storage, conversations=4, per_conversation=100)
    finally:
        await storage.close()
    compiled = HISTORY_WINDOW_QUERY.compile(dialect=sqlite.dialect())
    params = compiled.construct_params({"conversation_id": conversation_id, "limit": 50})
    assert compiled.positiontup is not None
    arguments = [params[name] for name in compiled.positiontup]

    with sqlite3.connect(path) as connection:
        connection.execute("ANALYZE")
        explained = connection.execute(f"EXPLAIN QUERY PLAN {compiled}", arguments)
        plan = [row[3] for row in explained]

    # One SEARCH on the index; a SCAN or a "USE TEMP B-TREE FOR ORDER BY" would be listed.
    assert plan == [
        f"SEARCH messages USING INDEX {INDEX} "
        "(conversation_id=? AND input_flagged=? AND delivery=?)"
    ]


async def test_postgres_plan_is_a_backward_index_scan(postgres: Postgres) -> None:
    dsn = postgres.require()
    await empty_postgres(dsn)
    storage = await open_storage(dsn)
    try:
        conversation_id = await _fill(storage, conversations=2, per_conversation=20)
    finally:
        await storage.close()
    asyncpg_dialect = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
    sql = str(HISTORY_WINDOW_QUERY.compile(dialect=asyncpg_dialect))

    connection = await asyncpg.connect(dsn)
    try:
        # Tiny tables make a sequential scan cheapest; forbid it to see that the index serves.
        await connection.execute("SET enable_seqscan = off")
        rows = await connection.fetch(f"EXPLAIN {sql}", conversation_id, 50)
    finally:
        await connection.close()
    plan = "\n".join(row[0] for row in rows)

    assert f"Index Scan Backward using {INDEX}" in plan
    assert "Sort" not in plan
