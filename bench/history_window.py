"""Benchmark the storage operations of a chat turn, and the history window's independence of size.

Run: ``.venv/bin/python bench/history_window.py [--messages N]``. Two fresh SQLite files in a
temporary folder, both through :class:`bot.storage.Storage`:

* ``small``: one conversation holding 100 messages;
* ``large``: ``N`` messages (default 1,000,000): the measured conversation holds a tenth of
  them, the rest are spread over 1,000 other conversations, and one message in ten is flagged.

Figures (median / 99th percentile of sequential calls, in milliseconds):

* ``window_small_ms`` / ``window_large_ms``: ``history_window(conversation, 50)``;
  ``history_ratio`` = large / small (target <= 1.2);
* ``add_message_ms`` and ``add_message_ratio``: one ``add_message`` against the floor, one raw
  ``sqlite3`` insert + commit into the same kind of file (same pragmas);
* ``conversation_ms``: the get-or-create lookup every turn starts with.

The last line of output is one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select

from bot.storage import NewMessage, open_storage
from bot.storage.database import open_database, parse_url
from bot.storage.migrate import migrate_url
from bot.storage.models import ConversationRow, MessageRow

WINDOW = 50
CALLS = 2000
TARGET_HISTORY_RATIO = 1.2
CHUNK = 50_000


def _summary(samples: list[float]) -> tuple[float, float]:
    """Median and 99th percentile, in milliseconds."""
    return statistics.median(samples), statistics.quantiles(samples, n=100)[98]


async def _timed(*calls: Callable[[], Awaitable[object]]) -> list[tuple[float, float]]:
    """Time ``CALLS`` sequential runs of each call, interleaved so that drift in the machine's
    load (other processes, CPU frequency) affects every call alike."""
    samples: list[list[float]] = [[] for _ in calls]
    for round_ in range(CALLS + CALLS // 10):
        for call, kept in zip(calls, samples, strict=True):
            started = time.perf_counter()
            await call()
            if round_ >= CALLS // 10:  # the first tenth warms connections and caches
                kept.append((time.perf_counter() - started) * 1000)
    return [_summary(kept) for kept in samples]


def _bulk_rows(conversation_ids: list[int], count: int, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "conversation_id": conversation_ids[i % len(conversation_ids)],
            "role": "user" if i % 2 else "assistant",
            "author_id": f"user{i % 97}",
            "author_name": "Someone",
            "text": f"message {i}: the lamp turns and the waves keep breaking on the rocks",
            "created_at": now,
            "input_flagged": i % 10 == 0,
            "input_sensitive_type": 5 if i % 10 == 0 else 0,
            "edited": False,
        }
        for i in range(count)
    ]


def _insert_messages(rows: list[dict[str, Any]], connection: Connection) -> None:
    connection.execute(insert(MessageRow), rows)


async def fill_messages(url: str, total: int) -> int:
    """Store ``total`` messages in bulk in the (new) database at ``url``.

    A tenth go to one conversation, whose id is returned; the rest are spread over 1,000
    others, and one in ten is flagged. Other benchmarks (``bench/turn.py``) may reuse this:
    ``from history_window import fill_messages``.
    """
    await migrate_url(parse_url(url))
    database = open_database(parse_url(url))
    now = datetime.now(UTC)

    def create_conversations(connection: Connection) -> dict[str, int]:
        rows = [
            {"platform": "bench", "chat_id": name, "thread_id": "", "character_id": "aria"}
            for name in ["measured", *(f"c{i}" for i in range(1000))]
        ]
        connection.execute(insert(ConversationRow), [{**r, "created_at": now} for r in rows])
        query = select(ConversationRow.chat_id, ConversationRow.id)
        return {chat_id: id for chat_id, id in connection.execute(query)}

    try:
        ids = await database.write(create_conversations)
        # One slot in ten (111 of 1,111) is the measured conversation.
        slots = [ids["measured"]] * 111 + [ids[f"c{i}"] for i in range(1000)]
        done = 0
        while done < total:
            rows = _bulk_rows(slots, min(CHUNK, total - done), now)
            await database.write(functools.partial(_insert_messages, rows))
            done += len(rows)
    finally:
        await database.dispose()
    return ids["measured"]


def _raw_insert_floor(path: Path) -> tuple[float, float]:
    """One raw sqlite3 insert + commit per call, same pragmas as Troupe's."""
    connection = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        connection.execute(f"PRAGMA {pragma}")
    connection.execute("CREATE TABLE floor (id INTEGER PRIMARY KEY, conversation_id, text, at)")
    samples = []
    for i in range(CALLS):
        started = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            "INSERT INTO floor (conversation_id, text, at) VALUES (?, ?, ?)",
            (1, f"message {i}", datetime.now(UTC).isoformat()),
        )
        connection.execute("COMMIT")
        samples.append((time.perf_counter() - started) * 1000)
    connection.close()
    return _summary(samples)


async def main(total: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="troupe-bench-") as folder:
        large_url = f"sqlite:///{folder}/large.sqlite3"
        started = time.perf_counter()
        measured = await fill_messages(large_url, total)
        fill_s = time.perf_counter() - started
        large = await open_storage(large_url, migrate=False)
        assert len(await large.history_window(measured, WINDOW)) == WINDOW

        small = await open_storage(f"sqlite:///{folder}/small.sqlite3")
        conversation = await small.conversation("bench", "small", default_character="aria")
        for i in range(100):
            await small.add_message(NewMessage(conversation.id, "user", "u", "U", f"m{i}"))

        window_small, window_large, lookup, add = await _timed(
            lambda: small.history_window(conversation.id, WINDOW),
            lambda: large.history_window(measured, WINDOW),
            lambda: small.conversation("bench", "small", default_character="aria"),
            lambda: small.add_message(NewMessage(conversation.id, "user", "u", "U", "hello")),
        )
        await small.close()
        await large.close()
        floor = _raw_insert_floor(Path(folder) / "floor.sqlite3")

    return {
        "messages_large": total,
        "fill_large_s": round(fill_s, 1),
        "window_small_ms": round(window_small[0], 3),
        "window_small_p99_ms": round(window_small[1], 3),
        "window_large_ms": round(window_large[0], 3),
        "window_large_p99_ms": round(window_large[1], 3),
        "history_ratio": round(window_large[0] / window_small[0], 3),
        "history_target": TARGET_HISTORY_RATIO,
        "conversation_ms": round(lookup[0], 3),
        "add_message_ms": round(add[0], 3),
        "add_message_p99_ms": round(add[1], 3),
        "floor_insert_commit_ms": round(floor[0], 3),
        "add_message_ratio": round(add[0] / floor[0], 2),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    figures = asyncio.run(main(parser.parse_args().messages))
    for key, value in figures.items():
        print(f"{key:>24}: {value}")
    print(json.dumps(figures))
