"""Turns owed are resumed on Telegram: messages stored while the bot shut down are answered
after the restart, in private chats and forum topics, without anyone writing again."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.storage import open_storage
from tests.standins.telegram import TelegramStandIn
from tests.telegram.conftest import WAIT, BotFactory, ManagerFactory


async def test_messages_stored_during_shutdown_are_answered_after_the_restart(
    tg: TelegramStandIn,
    make_manager: ManagerFactory,
    start_bot: BotFactory,
    tmp_path: Path,
) -> None:
    alice = tg.add_user("Alice", "alice")
    dm = tg.private_chat(alice)
    tavern = tg.group("Tavern", [alice], supergroup=True, forum=True)
    topic = tg.add_topic(tavern, "Stories")
    before = await make_manager()
    first = await start_bot(before)
    before.stop_answering()
    tg.user_says(dm, alice, "still there?")
    tg.user_says(tavern, alice, "Aria, tell us a story", thread_id=topic)
    storage = await open_storage(f"sqlite+aiosqlite:///{tmp_path / 'troupe.sqlite3'}")
    try:
        async with asyncio.timeout(WAIT):
            while len(await storage.owed_turns("telegram")) < 2:  # noqa: ASYNC110 - no event
                await asyncio.sleep(0.01)
    finally:
        await storage.close()
    await first.stop()
    assert dm.bot_messages() == []
    assert tavern.bot_messages(topic) == []

    await start_bot(await make_manager())
    await tg.wait_until(
        lambda: (
            any("“still there?”" in m.text for m in dm.bot_messages())
            and any("“Aria, tell us a story”" in m.text for m in tavern.bot_messages(topic))
        ),
        timeout=WAIT,
        what="the replies owed",
    )
