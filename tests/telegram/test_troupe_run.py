"""``troupe run`` with TELEGRAM_TOKEN set: the whole program, polling the stand-in."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from bot.runtime import run_bot
from bot.settings import Settings
from tests.standins.telegram import TelegramStandIn
from tests.telegram.conftest import CHARACTERS_DIR, WAIT


async def test_troupe_run_answers_on_telegram_and_stops_cleanly(
    tg: TelegramStandIn, tmp_path: Path
) -> None:
    environ = {
        "TELEGRAM_TOKEN": tg.token,
        "TELEGRAM_API_BASE_URL": tg.base_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'troupe.sqlite3'}",
        "TROUPE_CHARACTERS_DIR": str(CHARACTERS_DIR),
        "TROUPE_DEFAULT_CHARACTER": "aria",
    }
    out = io.StringIO()
    stop = asyncio.Event()
    running = asyncio.create_task(run_bot(Settings.from_environ(environ), out=out, stop=stop))
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "hello from the whole program")
    await tg.wait_until(
        lambda: any("Aria heard Alice" in m.text for m in dm.bot_messages()), timeout=WAIT
    )
    assert tg.commands_for({"type": "all_private_chats"})
    stop.set()
    assert await asyncio.wait_for(running, WAIT) == 0
    assert "Running: telegram." in out.getvalue()
    polls = len(tg.calls_to("getUpdates"))
    await asyncio.sleep(0.3)
    assert len(tg.calls_to("getUpdates")) == polls
