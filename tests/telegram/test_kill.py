"""``troupe run`` killed or stopped mid-reply: the message is answered after the restart (or
by the surviving process) without anyone writing again, and shutdown keeps its deadline."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from bot.conversation.manager import INTERRUPTED
from bot.llm.fake import FakeM2Her, Reply
from tests.databases import Postgres, empty_postgres
from tests.standins.telegram import Chat, TelegramStandIn, free_loopback_port
from tests.telegram.test_webhook_processes import round_robin_proxy, wait_for_line

REPO = Path(__file__).resolve().parents[2]
WAIT = 20.0
#: The model streams the killed reply slowly: 0.3 s between pieces of about 90 characters.
SLOW = Reply(chunk_delay=0.3)


def environment(tg: TelegramStandIn, fake: FakeM2Her, database_url: str) -> dict[str, str]:
    """What ``troupe run`` reads to run Telegram on the stand-in with ``fake`` as M2-her."""
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "TROUPE_", "MINIMAX_"))
    }
    return {
        **inherited,
        "TELEGRAM_TOKEN": tg.token,
        "TELEGRAM_API_BASE_URL": tg.base_url,
        "MINIMAX_API_KEY": "sk-test-kill",
        "MINIMAX_BASE_URL": fake.base_url,
        "DATABASE_URL": database_url,
        "TROUPE_CHARACTERS_DIR": str(REPO / "characters"),
        "TROUPE_DEFAULT_CHARACTER": "aria",
    }


@asynccontextmanager
async def troupe_run(
    environ: Mapping[str, str], cwd: Path, log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A ``troupe run`` process, running once it says so; killed on the way out if alive."""
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bot", "run"),
            cwd=cwd,
            env=dict(environ),
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    try:
        assert process.stdout is not None
        await wait_for_line(process.stdout, "Running: telegram")
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


def complete_reply_to(chat: Chat, said: str) -> bool:
    """Whether the chat shows the fake model's whole reply to ``said``."""
    return any(
        f"Alice: “{said}”" in m.text and m.text.endswith("in context)") for m in chat.bot_messages()
    )


async def started_streaming(tg: TelegramStandIn, fake: FakeM2Her, requests: int) -> None:
    """Wait until the model has ``requests`` requests and the chat shows part of a reply."""
    await tg.wait_until(lambda: len(fake.requests) >= requests, timeout=WAIT, what="the turn")
    shown = len(tg.calls_to("sendMessageDraft")) + len(tg.calls_to("sendMessage"))
    await tg.wait_until(
        lambda: len(tg.calls_to("sendMessageDraft")) + len(tg.calls_to("sendMessage")) > shown,
        timeout=WAIT,
        what="part of the reply on screen",
    )


async def test_a_process_killed_mid_reply_answers_after_it_starts_again(
    tg: TelegramStandIn, fake_m2her: FakeM2Her, tmp_path: Path
) -> None:
    environ = environment(tg, fake_m2her, f"sqlite+aiosqlite:///{tmp_path / 'troupe.sqlite3'}")
    alice = tg.add_user("Alice", "alice")
    dm = tg.private_chat(alice)
    async with troupe_run(environ, tmp_path, tmp_path / "first.log") as first:
        fake_m2her.enqueue(SLOW)
        tg.user_says(dm, alice, "tell me everything")
        await started_streaming(tg, fake_m2her, requests=2)  # the key check, then the turn
        first.send_signal(signal.SIGKILL)
        await first.wait()
    assert not complete_reply_to(dm, "tell me everything")

    async with troupe_run(environ, tmp_path, tmp_path / "second.log"):
        await tg.wait_until(
            lambda: complete_reply_to(dm, "tell me everything"),
            timeout=WAIT,
            what="the reply after the restart",
        )
    assert [m.text for m in dm.visible() if not m.sender.is_bot] == ["tell me everything"]


async def test_the_survivor_of_two_processes_answers_what_the_killed_one_was_answering(
    postgres: Postgres, tg: TelegramStandIn, fake_m2her: FakeM2Her, tmp_path: Path
) -> None:
    dsn = postgres.require()
    await empty_postgres(dsn)
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    lease = 2.0
    backends = [free_loopback_port(), free_loopback_port()]
    runner, proxy_port, served = await round_robin_proxy(backends)
    base = {
        **environment(tg, fake_m2her, url),
        "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{proxy_port}/telegram/hook",
        "TELEGRAM_WEBHOOK_SECRET": "shared_Secret-42",
        "TELEGRAM_LISTEN_HOST": "127.0.0.1",
        "TROUPE_CLAIM_LEASE_SECONDS": str(lease),
    }
    alice = tg.add_user("Alice", "alice")
    dm = tg.private_chat(alice)
    try:
        async with (
            troupe_run(
                {**base, "TELEGRAM_LISTEN_PORT": str(backends[0])}, tmp_path, tmp_path / "a.log"
            ) as first,
            troupe_run(
                {**base, "TELEGRAM_LISTEN_PORT": str(backends[1])}, tmp_path, tmp_path / "b.log"
            ) as second,
        ):
            fake_m2her.enqueue(SLOW)
            tg.user_says(dm, alice, "who is there?")
            await started_streaming(tg, fake_m2her, requests=3)  # two key checks, the turn
            answering, survivor = (first, second) if served == [1, 0] else (second, first)
            assert sorted(served) == [0, 1]
            answering.send_signal(signal.SIGKILL)
            await answering.wait()
            killed_at = time.monotonic()

            await tg.wait_until(
                lambda: complete_reply_to(dm, "who is there?"),
                timeout=WAIT,
                what="the survivor's reply",
            )
            # The claim of the killed process expires after the lease; the survivor looks
            # for owed turns every half lease.
            assert time.monotonic() - killed_at < lease * 2 + 2
            assert survivor.returncode is None
    finally:
        await runner.cleanup()


async def test_shutdown_keeps_its_deadline_tells_the_user_and_answers_after_the_restart(
    tg: TelegramStandIn, fake_m2her: FakeM2Her, tmp_path: Path
) -> None:
    environ = {
        **environment(tg, fake_m2her, f"sqlite+aiosqlite:///{tmp_path / 'troupe.sqlite3'}"),
        "TROUPE_SHUTDOWN_SECONDS": "1",
    }
    alice = tg.add_user("Alice", "alice")
    dm = tg.private_chat(alice)
    async with troupe_run(environ, tmp_path, tmp_path / "first.log") as first:
        fake_m2her.enqueue(Reply(delay=60))  # the model hangs
        tg.user_says(dm, alice, "a long story please")
        await tg.wait_until(lambda: len(fake_m2her.requests) == 2, timeout=WAIT, what="the turn")
        first.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        code = await asyncio.wait_for(first.wait(), 10)
        took = time.monotonic() - stopping
    assert took < 3, f"took {took:.1f} s to stop"
    assert code == 0
    assert [m.text for m in dm.bot_messages()] == [INTERRUPTED]

    async with troupe_run(environ, tmp_path, tmp_path / "second.log"):
        await tg.wait_until(
            lambda: complete_reply_to(dm, "a long story please"),
            timeout=WAIT,
            what="the reply after the restart",
        )
