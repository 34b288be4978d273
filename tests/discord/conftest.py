"""Fixtures for the Discord adapter's end-to-end tests.

An unmodified discord.py runs against the Discord stand-in on 127.0.0.1; the engine behind it
uses a real SQLite file and the fake M2-her. ``start_bot`` can be called again on the same
database to simulate a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.characters.loader import load_characters
from bot.conversation.manager import ConversationManager, ManagerSettings
from bot.llm.client import M2HerClient
from bot.llm.fake import FakeM2Her
from bot.platforms.discord import DiscordConfig, TroupeClient, create_client
from bot.platforms.discord.client import pointed_at
from bot.storage import Storage, open_storage
from tests.standins.discord import DiscordStandIn, Guild, User, loopback_only_trace
from tests.standins.discord.model import Channel

SHIPPED_CHARACTERS = Path(__file__).resolve().parents[2] / "characters"

VELVET = """\
name: Velvet
nicknames: [Vel]
description: "{{char}} runs a late-night cabaret for grown-ups."
nsfw: true
"""


@dataclass
class World:
    """A server with one text channel and a member, the usual starting point."""

    guild: Guild
    general: Channel
    alice: User
    owner: User


@dataclass
class Bot:
    """A running bot: the discord.py client and the engine behind it."""

    client: TroupeClient
    manager: ConversationManager
    storage: Storage
    reports: list[str]
    seen_urls: list[str]


@dataclass
class Harness:
    standin: DiscordStandIn
    fake: FakeM2Her
    database_url: str
    characters_dir: Path
    client: M2HerClient
    config: DiscordConfig
    running: list[tuple[Bot, asyncio.Task[None]]] = field(default_factory=list)

    async def start(
        self,
        settings: ManagerSettings | None = None,
        *,
        now: Callable[[], datetime] | None = None,
        **config: Any,
    ) -> Bot:
        storage = await open_storage(self.database_url)
        manager = ConversationManager(
            storage=storage,
            characters=load_characters(self.characters_dir),
            client=self.client,
            settings=settings or ManagerSettings(default_character="aria"),
            now=now or (lambda: datetime.now(UTC)),
        )
        reports: list[str] = []
        seen: list[str] = []
        bot_config = replace(self.config, **config)
        client = create_client(
            manager, bot_config, report=reports.append, http_trace=loopback_only_trace(seen)
        )
        task = asyncio.create_task(client.start(bot_config.token))
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait({ready, task}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            ready.cancel()
            await client.close()
            await storage.close()
            task.result()
        assert ready in done, "the bot did not get READY"
        bot = Bot(client, manager, storage, reports, seen)
        self.running.append((bot, task))
        return bot

    async def stop(self, bot: Bot) -> None:
        for index, (running, task) in enumerate(self.running):
            if running is bot:
                del self.running[index]
                await _stop(running, task)
                return


async def _stop(bot: Bot, task: asyncio.Task[None]) -> None:
    await bot.client.close()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    await bot.storage.close()


def config_for(standin: DiscordStandIn, **changes: Any) -> DiscordConfig:
    """Settings pointed at ``standin``, quick to start, with a short edit interval."""
    config = DiscordConfig(
        token=standin.token,
        api_base_url=standin.api_base_url,
        gateway_url=standin.gateway_url,
        guild_ready_timeout=0.05,
        identify_delay=0.0,
        edit_interval=0.05,
    )
    return replace(config, **changes)


def environ_for(standin: DiscordStandIn, characters_dir: Path, database: Path) -> dict[str, str]:
    """What ``troupe run`` would read to run Discord against ``standin``."""
    return {
        "DISCORD_TOKEN": standin.token,
        "DISCORD_API_BASE_URL": standin.api_base_url,
        "DISCORD_GATEWAY_URL": standin.gateway_url,
        "DISCORD_GUILD_READY_TIMEOUT": "0.05",
        "TROUPE_CHARACTERS_DIR": str(characters_dir),
        "TROUPE_DEFAULT_CHARACTER": "aria",
        "DATABASE_URL": f"sqlite:///{database}",
    }


@pytest.fixture
async def standin() -> AsyncIterator[DiscordStandIn]:
    async with DiscordStandIn() as server:
        yield server


@pytest.fixture
def characters_dir(tmp_path: Path) -> Path:
    """The shipped characters plus an adults-only one."""
    target = tmp_path / "characters"
    shutil.copytree(SHIPPED_CHARACTERS, target)
    (target / "velvet.yaml").write_text(VELVET, encoding="utf-8")
    return target


@pytest.fixture
async def harness(
    standin: DiscordStandIn,
    fake_m2her: FakeM2Her,
    m2her_client: M2HerClient,
    characters_dir: Path,
    tmp_path: Path,
) -> AsyncIterator[Harness]:
    config = config_for(standin, typing_interval=0.2)
    harness = Harness(
        standin,
        fake_m2her,
        f"sqlite+aiosqlite:///{tmp_path / 'troupe.sqlite3'}",
        characters_dir,
        m2her_client,
        config,
    )
    with pointed_at(config):
        yield harness
        while harness.running:
            bot, task = harness.running.pop()
            await _stop(bot, task)


@pytest.fixture
def world(standin: DiscordStandIn) -> World:
    guild = standin.create_guild("Tavern")
    general = standin.create_text_channel(guild, "general")
    alice = standin.create_member(guild, "alice", global_name="Alice")
    owner = guild.member(guild.owner_id).user
    return World(guild, general, alice, owner)


@pytest.fixture
async def bot(harness: Harness, world: World) -> Bot:
    return await harness.start()


StartBot = Callable[..., Awaitable[Bot]]


async def final_reply(
    standin: DiscordStandIn, channel: Channel, after: Any, *, ending: str = "in context)"
) -> Any:
    """The bot-side message after ``after`` once its streamed text is complete."""
    return await standin.wait_for_message(
        channel, lambda message: message.content.endswith(ending), after=after
    )


async def command(
    standin: DiscordStandIn, channel: Channel, user: User, name: str, options: Any = None
) -> Any:
    """Invoke a slash command and wait for the bot's answer."""
    interaction = await standin.invoke_command(channel, user, name, options)
    return await standin.wait_for_response(interaction)


async def eventually(check: Callable[[], Awaitable[bool]], *, seconds: float = 5.0) -> None:
    """Wait until the async ``check`` holds (the engine finishes a turn after the final text
    is visible: storing the platform id and the usage comes last)."""
    async with asyncio.timeout(seconds):
        while True:
            if await check():
                return
            await asyncio.sleep(0.01)
