"""Telegram webhook mode behind several processes: two real ``troupe run`` processes behind a
round-robin proxy, one PostgreSQL database, one busy private chat."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
from pathlib import Path

from aiohttp import ClientSession, web

from bot.llm.fake import FakeM2Her, Reply
from bot.storage import open_storage
from tests.databases import Postgres, empty_postgres
from tests.standins.telegram import TelegramStandIn, free_loopback_port

REPO = Path(__file__).resolve().parents[2]
MESSAGES = 8


async def round_robin_proxy(backends: list[int]) -> tuple[web.AppRunner, int, list[int]]:
    """A load balancer on loopback: each POST goes to the next backend in turn."""
    turn = itertools.cycle(range(len(backends)))
    served = [0] * len(backends)
    session = ClientSession()

    async def forward(request: web.Request) -> web.Response:
        index = next(turn)
        served[index] += 1
        url = f"http://127.0.0.1:{backends[index]}{request.path}"
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with session.post(url, data=await request.read(), headers=headers) as answer:
            return web.Response(status=answer.status, body=await answer.read())

    async def close_session(app: web.Application) -> None:
        await session.close()

    app = web.Application()
    app.router.add_post("/{tail:.*}", forward)
    app.on_cleanup.append(close_session)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_loopback_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port, served


async def wait_for_line(stream: asyncio.StreamReader, marker: str) -> None:
    async with asyncio.timeout(30):
        while marker not in (line := (await stream.readline()).decode()):
            assert line, f"the process ended before printing {marker!r}"


async def test_two_webhook_processes_share_one_chat_without_overlap_or_loss(
    postgres: Postgres, tmp_path: Path
) -> None:
    dsn = postgres.require()
    await empty_postgres(dsn)
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    backends = [free_loopback_port(), free_loopback_port()]
    runner, proxy_port, served = await round_robin_proxy(backends)
    processes: list[asyncio.subprocess.Process] = []
    async with TelegramStandIn() as tg, FakeM2Her() as fake:
        alice = tg.add_user("Alice", "alice")
        dm = tg.private_chat(alice)
        base = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "TROUPE_"))},
            "TELEGRAM_TOKEN": tg.token,
            "TELEGRAM_API_BASE_URL": tg.base_url,
            "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{proxy_port}/telegram/hook",
            "TELEGRAM_WEBHOOK_SECRET": "shared_Secret-42",
            "TELEGRAM_LISTEN_HOST": "127.0.0.1",
            "DATABASE_URL": url,
            "TROUPE_CHARACTERS_DIR": str(REPO / "characters"),
        }
        try:
            for port in backends:
                process = await asyncio.create_subprocess_exec(
                    *(sys.executable, "-m", "bot", "run"),
                    cwd=tmp_path,
                    env={**base, "TELEGRAM_LISTEN_PORT": str(port)},
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                processes.append(process)
                assert process.stdout is not None
                await wait_for_line(process.stdout, "Running: telegram")

            # Slow replies, so turns would overlap if the processes did not take turns.
            fake.enqueue(*[Reply(chunk_delay=0.02)] * (MESSAGES + 2))
            for n in range(MESSAGES):
                tg.user_says(dm, alice, f"message {n}")

            storage = await open_storage(url)
            try:
                conversation = await storage.conversation(
                    "telegram", str(dm.id), default_character="aria"
                )
                async with asyncio.timeout(60):
                    while True:
                        history = await storage.history_window(conversation.id, 1000)
                        said = [m for m in history if m.role == "user"]
                        replies = [m for m in history if m.role == "assistant"]
                        anchors = [r.reply_to_id or 0 for r in replies]
                        if len(said) == MESSAGES and anchors and max(anchors) >= said[-1].id:
                            break
                        await asyncio.sleep(0.1)
                await asyncio.sleep(0.5)  # anything still running would show up now
                history = await storage.history_window(conversation.id, 1000)
            finally:
                await storage.close()
        finally:
            for process in processes:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
            codes = [await asyncio.wait_for(p.wait(), 40) for p in processes]
            await runner.cleanup()

        said = [m for m in history if m.role == "user"]
        replies = [m for m in history if m.role == "assistant"]
        assert sorted(m.text for m in said) == sorted(f"message {n}" for n in range(MESSAGES))
        answered = [r.reply_to_id for r in replies]
        assert len(answered) == len(set(answered)), "two turns answered the same messages"
        assert all(count > 0 for count in served), f"the proxy fed only one process: {served}"
        assert codes == [0, 0]
        # Every reply the engine stored is what the chat shows.
        shown = [m.text for m in dm.bot_messages()]
        assert [r.text for r in replies] == shown[-len(replies) :]
