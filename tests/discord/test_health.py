"""``troupe run`` on Discord: ``/healthz`` fails while Discord keeps failing the bot's
requests, and recovers when they get through again."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from bot.runtime import run_bot
from bot.settings import Settings
from tests.discord.conftest import World, environ_for
from tests.observability.probe import wait_for_check
from tests.standins.discord import DiscordStandIn
from tests.standins.telegram import free_loopback_port


async def test_healthz_fails_while_sends_keep_failing_and_recovers(
    standin: DiscordStandIn, world: World, characters_dir: Path, tmp_path: Path
) -> None:
    port = free_loopback_port()
    environ = {
        **environ_for(standin, characters_dir, tmp_path / "run.sqlite3"),
        "TROUPE_HEALTH_PORT": str(port),
        "TROUPE_UNHEALTHY_AFTER_FAILURES": "2",  # the reply, then the notice that it failed
        "TROUPE_UNHEALTHY_AFTER_SECONDS": "0",
    }
    stop = asyncio.Event()
    running = asyncio.create_task(
        run_bot(Settings.from_environ(environ), out=io.StringIO(), stop=stop)
    )
    try:
        await standin.wait_until_connected(timeout=10)
        assert await wait_for_check(port, "discord", healthy=True) == (200, "ok")
        dm = standin.open_dm(world.alice)

        standin.fail_writes(503)
        await standin.user_says(dm, world.alice, "anyone there?")
        status, reason = await wait_for_check(port, "discord", healthy=False)
        assert status == 503
        assert "requests in a row failed" in reason
        assert "HTTP 503" in reason
        assert standin.bot_messages(dm) == []

        standin.fail_writes(None)
        said = await standin.user_says(dm, world.alice, "hello again")
        await standin.wait_for_message(dm, after=said, timeout=10)
        assert await wait_for_check(port, "discord", healthy=True) == (200, "ok")
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)
