"""Two real bot processes on one PostgreSQL database, hammering the same conversations."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from bot.llm.fake import FakeM2Her, Reply
from bot.storage import open_storage
from tests.databases import Postgres, empty_postgres

REPO = Path(__file__).resolve().parents[2]
CHATS, MESSAGES = 3, 8


async def test_two_processes_never_overlap_lose_or_duplicate(
    postgres: Postgres, fake_m2her: FakeM2Her
) -> None:
    dsn = postgres.require()
    await empty_postgres(dsn)
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    await (await open_storage(url)).close()  # migrate once, before the race
    # Slow replies, so turns of one conversation would overlap if nothing kept them apart.
    fake_m2her.enqueue(*[Reply(chunk_delay=0.01)] * 200)

    async def bot(name: str) -> dict[str, int]:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tests.conversation.hammer", url, fake_m2her.base_url),
            *(name, str(CHATS), str(MESSAGES)),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0, err.decode()
        outcomes: dict[str, int] = json.loads(out.decode().strip().splitlines()[-1])["outcomes"]
        return outcomes

    first, second = await asyncio.gather(bot("ann"), bot("bo"))
    for outcomes in (first, second):
        assert set(outcomes) <= {"answered", "answered_by_batch"}, outcomes
        assert sum(outcomes.values()) == CHATS * MESSAGES

    storage = await open_storage(url)
    try:
        replies_total = 0
        for chat in range(CHATS):
            conversation = await storage.conversation(
                "hammer", f"chat-{chat}", default_character="aria"
            )
            history = await storage.history_window(conversation.id, 10_000)
            said = [m for m in history if m.role == "user"]
            replies = [m for m in history if m.role == "assistant"]
            replies_total += len(replies)
            # Nothing lost, nothing stored twice.
            expected = {f"{who} says {n} in chat-{chat}" for who in ("ann", "bo") for n in range(8)}
            assert sorted(m.text for m in said) == sorted(expected)
            # Every message was answered by some turn ...
            answered_through = max(r.reply_to_id or 0 for r in replies)
            assert all(m.id <= answered_through for m in said)
            # ... and no two turns answered the same messages (they never ran side by side).
            anchors = [r.reply_to_id for r in replies]
            assert len(anchors) == len(set(anchors))
        answered = first.get("answered", 0) + second.get("answered", 0)
        assert replies_total == answered == len(fake_m2her.requests)
    finally:
        await storage.close()
