"""Soak: many turns over many chats through a real ``troupe run`` process, on each stand-in.

Run: ``.venv/bin/python bench/soak.py`` (``--quick`` for a small run; ``--stands`` picks
among ``telegram-polling``, ``telegram-webhook`` and ``discord``). The bot is ``troupe run``
in its own process, on a scratch PostgreSQL database (``TROUPE_TEST_POSTGRES_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``; ``--sqlite`` for a SQLite file), with the
production cadences; the fake M2-her runs in another process; the stand-in and the simulated
users run here. Every chat says one message per round and the next round starts when every
chat is answered (or after ``--round-timeout`` seconds).

Every chat starts with a full history window (the bot's ``history_limit``, answered messages
stored before the first round), as in a bot that has been talking for a while: a turn holds its
window while it runs, so with fresh chats the turns' working set keeps growing until the windows
are full (100 rounds at 2 messages a round), and RSS with it, which is no leak. ``--fresh``
starts with empty chats instead.

Figures per stand-in:

* ``turns``: messages answered; ``unanswered``: messages sent and never answered;
* ``failed_sends``: platform writes the bot saw fail (its
  ``troupe_platform_request_failures_total``; ``null`` when the bot has no such metric);
* ``unhealthy_polls``: ``/healthz`` answers other than 200 (polled once a round);
* ``rss_growth_ratio``: the bot's RSS at the end over its RSS at half time (``/proc``);
* ``context_half``, ``context_end``: the messages in the request of chat 0's reply at half
  time and at the end, as the fake M2-her counts them (equal once the window is full);
* ``duration_s``; ``stopped_early`` when a whole round got no answer at all (a wedged bot),
  so the run stops by itself instead of waiting out every remaining round.

Targets: 0 failed sends, 0 unanswered, growth <= 1.05. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the stand-ins live in tests/

from fake_process import fake_in_child, serve_until_stdin_closes  # noqa: E402
from scratch_postgres import scratch_postgres  # noqa: E402

from bot.characters.loader import load_characters  # noqa: E402
from bot.conversation.manager import ManagerSettings  # noqa: E402
from bot.llm.fake import FakeM2Her  # noqa: E402
from bot.llm.fake.reply import REPLY_TEMPLATE  # noqa: E402
from bot.storage import NewMessage, open_storage  # noqa: E402
from tests.standins.discord import DiscordStandIn  # noqa: E402
from tests.standins.discord.model import Channel  # noqa: E402
from tests.standins.discord.model import User as DiscordUser  # noqa: E402
from tests.standins.telegram import Chat, TelegramStandIn, User, free_loopback_port  # noqa: E402

STANDS = ("telegram-polling", "telegram-webhook", "discord")
#: The bot's counter of failed platform requests, as /metrics shows it.
FAILURES_METRIC = "troupe_platform_request_failures_total"
FAILURES = re.compile(rf"^{FAILURES_METRIC}\{{[^}}]*\}} (\S+)$", re.MULTILINE)
#: How the fake M2-her's reply says how many messages its request had.
CONTEXT = re.compile(r"(\d+) messages in context")
CHARACTER = "aria"
#: Stored messages a turn loads: a chat with this many is in its steady state.
HISTORY_WINDOW = ManagerSettings().history_limit


@dataclass(frozen=True)
class ChatKey:
    """How the bot knows a chat and its user."""

    platform: str
    chat_id: str
    user_id: str
    user_name: str


class Stand(Protocol):
    """A platform stand-in with users who each talk to the bot in their own chat."""

    def environ(self) -> dict[str, str]:
        """What ``troupe run`` needs to reach this stand-in."""

    async def open_chats(self, count: int) -> None:
        """Create ``count`` users, each in a chat with the bot."""

    async def say(self, chat: int, text: str) -> None:
        """The user of chat number ``chat`` says ``text``."""

    def answered(self, chat: int) -> int:
        """How many replies the bot has posted in chat number ``chat``."""

    def last_reply(self, chat: int) -> str:
        """The text of the bot's newest reply in chat number ``chat`` ("" if none)."""

    def key(self, chat: int) -> ChatKey:
        """Chat number ``chat`` as the bot stores it."""


class TelegramStand:
    """Private chats on the Telegram stand-in, by long polling or through a webhook."""

    def __init__(self, tg: TelegramStandIn, *, webhook: bool) -> None:
        self._tg = tg
        self._webhook = webhook
        self._chats: list[tuple[Chat, User]] = []

    def environ(self) -> dict[str, str]:
        """Token, API URL, and for a webhook the bot's listening port."""
        environ = {"TELEGRAM_TOKEN": self._tg.token, "TELEGRAM_API_BASE_URL": self._tg.base_url}
        if self._webhook:
            port = free_loopback_port()
            environ |= {
                "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram/hook",
                "TELEGRAM_WEBHOOK_SECRET": "soak_Secret-1",
                "TELEGRAM_LISTEN_HOST": "127.0.0.1",
                "TELEGRAM_LISTEN_PORT": str(port),
            }
        return environ

    async def open_chats(self, count: int) -> None:
        """One private chat per user."""
        for n in range(count):
            user = self._tg.add_user(f"User{n}", f"user{n}")
            self._chats.append((self._tg.private_chat(user), user))

    async def say(self, chat: int, text: str) -> None:
        """The user posts; the update is queued for the bot."""
        where, user = self._chats[chat]
        self._tg.user_says(where, user, text)

    def answered(self, chat: int) -> int:
        """The bot's visible messages in the chat."""
        return len(self._chats[chat][0].bot_messages())

    def last_reply(self, chat: int) -> str:
        """The newest visible message of the bot in the chat ("" if none)."""
        said = self._chats[chat][0].bot_messages()
        return said[-1].text if said else ""

    def key(self, chat: int) -> ChatKey:
        """A private chat's id is its user's."""
        where, user = self._chats[chat]
        return ChatKey("telegram", str(where.id), str(user.id), user.first_name)


class DiscordStand:
    """Direct messages on the Discord stand-in."""

    def __init__(self, discord: DiscordStandIn) -> None:
        self._discord = discord
        self._chats: list[tuple[Channel, DiscordUser]] = []

    def environ(self) -> dict[str, str]:
        """Token and the stand-in's REST and gateway URLs."""
        return {
            "DISCORD_TOKEN": self._discord.token,
            "DISCORD_API_BASE_URL": self._discord.api_base_url,
            "DISCORD_GATEWAY_URL": self._discord.gateway_url,
        }

    async def open_chats(self, count: int) -> None:
        """One DM channel per member of a guild the bot is in."""
        await self._discord.wait_until_connected(timeout=30)
        guild = self._discord.create_guild("Soak")
        for n in range(count):
            member = self._discord.create_member(guild, f"user{n}")
            self._chats.append((self._discord.open_dm(member), member))

    async def say(self, chat: int, text: str) -> None:
        """The user posts in the DM; the gateway tells the bot."""
        channel, user = self._chats[chat]
        await self._discord.user_says(channel, user, text)

    def answered(self, chat: int) -> int:
        """The bot's live messages in the DM."""
        return len(self._discord.bot_messages(self._chats[chat][0]))

    def last_reply(self, chat: int) -> str:
        """The newest live message of the bot in the DM ("" if none)."""
        said = self._discord.bot_messages(self._chats[chat][0])
        return said[-1].content if said else ""

    def key(self, chat: int) -> ChatKey:
        """A DM is keyed by its channel."""
        channel, user = self._chats[chat]
        return ChatKey("discord", str(channel.id), str(user.id), user.username)


@dataclass
class Figures:
    """What one soak measured."""

    turns: int = 0
    failed_sends: int | None = None
    unanswered: int = 0
    unhealthy_polls: int = 0
    rss_growth_ratio: float = 0.0
    context_half: int | None = None
    context_end: int | None = None
    duration_s: float = 0.0
    stopped_early: bool = False


def rss_kib(pid: int) -> int:
    """The resident set size of process ``pid``, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no VmRSS for process {pid}")
    return int(match.group(1))


@contextlib.asynccontextmanager
async def scratch_database(sqlite: bool) -> AsyncIterator[str]:
    """A fresh database for one soak: a PostgreSQL database dropped afterwards, or a file."""
    if sqlite:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/soak.sqlite3"
        return
    async with scratch_postgres("troupe_soak") as url:
        yield url


@contextlib.asynccontextmanager
async def troupe_run(environ: dict[str, str], folder: Path) -> AsyncIterator[int]:
    """``troupe run`` as a child process until the block ends; yields its pid once running.

    Its output goes to files in ``folder`` (a pipe nobody reads would stall it)."""
    out, err = (folder / "bot.out").open("wb"), (folder / "bot.err").open("wb")
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bot", "run"), cwd=folder, env=environ, stdout=out, stderr=err
    )
    try:
        async with asyncio.timeout(60):
            while "Running:" not in (folder / "bot.out").read_text():
                if process.returncode is not None:
                    raise RuntimeError(f"troupe run ended: {(folder / 'bot.err').read_text()}")
                await asyncio.sleep(0.1)
        yield process.pid
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 40)
            except TimeoutError:
                process.kill()
                await process.wait()
        out.close()
        err.close()


async def seed_history(database_url: str, stand: Stand, chats: int, messages: int) -> None:
    """Store ``messages`` answered messages in each chat, alternately the user's and the
    character's, as the bot itself would have."""
    character = load_characters(ROOT / "characters").get(CHARACTER)
    storage = await open_storage(database_url)
    lanes = asyncio.Semaphore(8)

    async def seed(chat: int) -> None:
        key = stand.key(chat)
        async with lanes:
            conversation = await storage.conversation(
                key.platform, key.chat_id, default_character=CHARACTER
            )
            for n in range(messages):
                said = f"earlier {n // 2}, chat {chat}: how are you?"
                if n % 2 == 0:
                    message = NewMessage(conversation.id, "user", key.user_id, key.user_name, said)
                else:
                    reply = REPLY_TEMPLATE.format(
                        character=character.name, speaker=key.user_name, echo=said, count=n + 3
                    )
                    message = NewMessage(
                        conversation.id,
                        "assistant",
                        f"character:{character.id}",
                        character.name,
                        reply,
                        character_id=character.id,
                    )
                await storage.add_message(message)

    try:
        await asyncio.gather(*(seed(chat) for chat in range(chats)))
    finally:
        await storage.close()


def context_size(reply: str) -> int | None:
    """How many messages the fake M2-her's ``reply`` says its request had."""
    match = CONTEXT.search(reply)
    return int(match.group(1)) if match else None


def check_seeded(reply: str) -> None:
    """Fail if the bot's first ``reply`` was to less than a full history window (a soak that
    measured fresh chats while it meant to measure full ones would report their warm-up as
    growth)."""
    context = context_size(reply)
    if context is not None and context < HISTORY_WINDOW:
        raise RuntimeError(
            f"the bot did not answer from the stored history: its first reply had {context} "
            f"messages in context, fewer than the {HISTORY_WINDOW} stored"
        )


async def health(session: aiohttp.ClientSession, port: int, page: str) -> tuple[int, str]:
    """The status and body of the bot's ``/healthz`` or ``/metrics``."""
    async with session.get(f"http://127.0.0.1:{port}/{page}") as response:
        return response.status, await response.text()


async def soak(
    stand: Stand,
    fake_url: str,
    *,
    chats: int,
    rounds: int,
    round_timeout: float,
    sqlite: bool,
    fresh: bool,
    on_round: Callable[[int, int], None],
) -> Figures:
    """Run the rounds against one stand-in through a fresh ``troupe run``."""
    figures = Figures()
    health_port = free_loopback_port()
    async with (
        scratch_database(sqlite) as database_url,
        aiohttp.ClientSession() as session,
    ):
        with tempfile.TemporaryDirectory() as folder:
            environ = {
                **{
                    k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "TROUPE_"))
                },
                **stand.environ(),
                "MINIMAX_API_KEY": "sk-soak",
                "MINIMAX_BASE_URL": fake_url,
                "DATABASE_URL": database_url,
                "TROUPE_CHARACTERS_DIR": str(ROOT / "characters"),
                "TROUPE_DEFAULT_CHARACTER": CHARACTER,
                "TROUPE_HEALTH_PORT": str(health_port),
            }
            async with troupe_run(environ, Path(folder)) as pid:
                await stand.open_chats(chats)
                if not fresh:
                    await seed_history(database_url, stand, chats, HISTORY_WINDOW)
                sent = [0] * chats
                started = time.perf_counter()
                half_rss = 0
                for round_number in range(rounds):
                    before = sum(stand.answered(chat) for chat in range(chats))
                    for chat in range(chats):
                        await stand.say(chat, f"round {round_number}, chat {chat}: how are you?")
                        sent[chat] += 1
                    deadline = time.perf_counter() + round_timeout
                    while time.perf_counter() < deadline:
                        if all(stand.answered(c) >= sent[c] for c in range(chats)):
                            break
                        await asyncio.sleep(0.05)
                    status, _ = await health(session, health_port, "healthz")
                    figures.unhealthy_polls += status != 200
                    after = sum(stand.answered(chat) for chat in range(chats))
                    on_round(round_number, after)
                    if round_number == 0 and not fresh:
                        check_seeded(stand.last_reply(0))
                    if round_number == rounds // 2 - 1:
                        half_rss = rss_kib(pid)
                        figures.context_half = context_size(stand.last_reply(0))
                    if after == before:
                        figures.stopped_early = True
                        break
                figures.duration_s = round(time.perf_counter() - started, 1)
                end_rss = rss_kib(pid)
                figures.context_end = context_size(stand.last_reply(0))
                _, metrics = await health(session, health_port, "metrics")
    figures.turns = sum(min(stand.answered(c), sent[c]) for c in range(chats))
    figures.unanswered = sum(sent) - figures.turns
    if f"# HELP {FAILURES_METRIC}" in metrics:
        figures.failed_sends = int(sum(float(value) for value in FAILURES.findall(metrics)))
    figures.rss_growth_ratio = round(end_rss / half_rss, 3) if half_rss else 0.0
    return figures


@contextlib.asynccontextmanager
async def stand_named(name: str) -> AsyncIterator[Stand]:
    """The stand-in called ``name``, running until the block ends."""
    if name == "discord":
        async with DiscordStandIn() as discord:
            yield DiscordStand(discord)
    else:
        async with TelegramStandIn() as tg:
            yield TelegramStand(tg, webhook=name == "telegram-webhook")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Soak every stand-in asked for; return their figures."""
    results: dict[str, Any] = {"chats": args.chats, "rounds": args.rounds}
    async with fake_in_child(__file__) as fake_url:
        for name in args.stands:

            def progress(round_number: int, answered: int, name: str = name) -> None:
                print(f"{name}: round {round_number + 1}, {answered} answered", flush=True)

            async with stand_named(name) as stand:
                figures = await soak(
                    stand,
                    fake_url,
                    chats=args.chats,
                    rounds=args.rounds,
                    round_timeout=args.round_timeout,
                    sqlite=args.sqlite,
                    fresh=args.fresh,
                    on_round=progress if args.verbose else lambda _round, _answered: None,
                )
            results[name] = vars(figures)
            print(f"{name}: {json.dumps(vars(figures))}", flush=True)
    return results


async def serve_fake() -> None:
    """The fake M2-her, with limits no soak reaches."""
    async with FakeM2Her(rpm=10**9, tpm=10**12) as fake:
        await serve_until_stdin_closes(fake)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--chats", type=int, default=200, help="chats (one user each)")
    parser.add_argument("--rounds", type=int, default=100, help="messages per chat")
    parser.add_argument("--quick", action="store_true", help="20 chats x 10 rounds")
    parser.add_argument("--stands", nargs="+", choices=STANDS, default=list(STANDS))
    parser.add_argument("--round-timeout", type=float, default=60.0, help="seconds per round")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file, not PostgreSQL")
    parser.add_argument(
        "--fresh", action="store_true", help="chats start empty, not with a full history window"
    )
    parser.add_argument("--verbose", action="store_true", help="a line per round")
    arguments = parser.parse_args()
    if arguments.serve:
        asyncio.run(serve_fake())
        sys.exit(0)
    if arguments.quick:
        arguments.chats, arguments.rounds = 20, 10
    print(json.dumps(asyncio.run(main(arguments))))
