"""``troupe run`` on Telegram: ``/healthz`` fails while the Bot API keeps failing the bot's
requests, and recovers when they get through again."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from bot.runtime import run_bot
from bot.settings import Settings
from tests.observability.probe import wait_for_check
from tests.standins.telegram import TelegramStandIn, free_loopback_port
from tests.telegram.conftest import CHARACTERS_DIR, WAIT


async def test_healthz_fails_while_sends_keep_failing_and_recovers(
    tg: TelegramStandIn, tmp_path: Path
) -> None:
    port = free_loopback_port()
    environ = {
        "TELEGRAM_TOKEN": tg.token,
        "TELEGRAM_API_BASE_URL": tg.base_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'troupe.sqlite3'}",
        "TROUPE_CHARACTERS_DIR": str(CHARACTERS_DIR),
        "TROUPE_DEFAULT_CHARACTER": "aria",
        "TROUPE_HEALTH_PORT": str(port),
        "TROUPE_UNHEALTHY_AFTER_FAILURES": "2",  # the reply, then the notice that it failed
        "TROUPE_UNHEALTHY_AFTER_SECONDS": "0",
    }
    stop = asyncio.Event()
    running = asyncio.create_task(
        run_bot(Settings.from_environ(environ), out=io.StringIO(), stop=stop)
    )
    try:
        assert await wait_for_check(port, "telegram", healthy=True) == (200, "ok")
        alice = tg.add_user("Alice")
        dm = tg.private_chat(alice)

        tg.fail_writes(500)
        tg.user_says(dm, alice, "anyone there?")
        status, reason = await wait_for_check(port, "telegram", healthy=False, timeout=WAIT)
        assert status == 503
        assert "requests in a row failed" in reason
        assert "HTTP 500" in reason
        assert dm.bot_messages() == []

        tg.fail_writes(None)
        tg.user_says(dm, alice, "hello again")
        await tg.wait_until(lambda: bool(dm.bot_messages()), timeout=WAIT)
        assert await wait_for_check(port, "telegram", healthy=True) == (200, "ok")
    finally:
        stop.set()
        await asyncio.wait_for(running, WAIT)
