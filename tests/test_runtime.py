"""``troupe run`` as a real process: Telegram through the stand-in, health and metrics, and a
graceful shutdown on a real SIGTERM with a reply in flight."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from bot.llm.fake import FakeM2Her, Reply
from bot.storage import open_storage
from tests.standins.telegram import TelegramStandIn, free_loopback_port

REPO = Path(__file__).resolve().parents[1]
STORY = " ".join(f"Once upon a tide, line {n} of the lighthouse tale." for n in range(12))


async def read_until(stream: asyncio.StreamReader, marker: str, seen: list[str]) -> str:
    async with asyncio.timeout(30):
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError(f"process ended before {marker!r}: {seen}")
            seen.append(line)
            if marker in line:
                return line


async def test_sigterm_finishes_the_reply_in_flight_and_loses_nothing(tmp_path: Path) -> None:
    database = tmp_path / "run.sqlite3"
    async with TelegramStandIn() as tg, FakeM2Her() as fake:
        alice = tg.add_user("Alice", "alice")
        dm = tg.private_chat(alice)
        environ = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "TROUPE_"))},
            "TELEGRAM_TOKEN": tg.token,
            "TELEGRAM_API_BASE_URL": tg.base_url,
            "MINIMAX_API_KEY": "sk-api-for-the-fake",
            "MINIMAX_BASE_URL": fake.base_url,
            "DATABASE_URL": f"sqlite:///{database}",
            "TROUPE_CHARACTERS_DIR": str(REPO / "characters"),
            "TROUPE_HEALTH_PORT": str(free_loopback_port()),
            "TROUPE_SHUTDOWN_SECONDS": "15",
        }
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bot", "run"),
            cwd=tmp_path,
            env=environ,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        seen: list[str] = []
        try:
            health_line = await read_until(process.stdout, "Health and metrics on port", seen)
            port = int(health_line.rsplit(" ", 1)[1].rstrip(".\n"))
            await read_until(process.stdout, "Running: telegram", seen)
            assert len(fake.requests) == 1  # the start-up key check

            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    assert response.status == 200
                    health = await response.json()
                assert health["checks"] == {"database": "ok", "telegram": "ok"}

                # A slow reply: about 2 s of streaming.
                fake.enqueue(Reply(STORY, chunk_delay=0.1))
                tg.user_says(dm, alice, "Tell me a story")
                async with asyncio.timeout(15):
                    while len(fake.requests) < 2:  # noqa: ASYNC110 - the fake has no event
                        await asyncio.sleep(0.02)
                process.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.3)
                tg.user_says(dm, alice, "Are you leaving?")  # arrives while shutting down

            async with asyncio.timeout(30):
                await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        out = "".join(seen) + (await process.stdout.read()).decode()
        err = (await process.stderr.read()).decode() if process.stderr else ""
        assert process.returncode == 0, (out, err)
        assert "Stopped." in out
        # The reply in flight was finished, exactly, and nothing new was started.
        assert [m.text for m in dm.bot_messages()][-1] == STORY
        assert len(fake.requests) == 2
        assert "sk-api-for-the-fake" not in out + err
        assert tg.token not in out + err

    storage = await open_storage(f"sqlite:///{database}")
    try:
        conversation = await storage.conversation("telegram", str(dm.id), default_character="aria")
        history = await storage.history_window(conversation.id, 50)
        assert [(m.role, m.text) for m in history][-3:] == [
            ("user", "Tell me a story"),
            ("assistant", STORY),
            ("user", "Are you leaving?"),
        ]
    finally:
        await storage.close()


async def test_a_rejected_key_is_explained_at_start(tmp_path: Path) -> None:
    async with TelegramStandIn() as tg, FakeM2Her(api_key="sk-the-right-one") as fake:
        environ = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "TROUPE_"))},
            "TELEGRAM_TOKEN": tg.token,
            "TELEGRAM_API_BASE_URL": tg.base_url,
            "MINIMAX_API_KEY": "sk-a-wrong-one",
            "MINIMAX_BASE_URL": fake.base_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}",
            "TROUPE_CHARACTERS_DIR": str(REPO / "characters"),
        }
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bot", "run"),
            cwd=tmp_path,
            env=environ,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    message = err.decode()
    assert "M2-her refused the key" in message
    assert "Fix: check MINIMAX_API_KEY" in message
    assert "sk-a-wrong-one" not in message + out.decode()
    assert not [c for c in tg.calls if c.method == "getUpdates"]  # it never went online
