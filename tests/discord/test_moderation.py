"""Moderation: flagged output never stays visible; moderators get a record without content."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from bot.app import open_engine
from bot.conversation.moderation import ModerationAction, ModerationPolicy
from bot.conversation.services import BrokenCharactersHook, PlatformServices
from bot.conversation.settings import ServerSettings
from bot.llm.fake import FakeM2Her
from bot.llm.fake.script import Error, Reply
from bot.observability.delivery import DeliveryMonitor
from bot.platforms.discord import run_discord
from bot.settings import Settings
from tests.discord.conftest import Bot, World, command, environ_for, final_reply
from tests.standins.discord import DiscordStandIn


async def moderated_server(standin: DiscordStandIn, world: World, bot: Bot, **policy):
    mods = standin.create_text_channel(world.guild, "mods")
    await standin.wait_for(lambda: bot.client.get_channel(mods.id) is not None)
    await bot.manager.policies.set_server_settings(
        "discord",
        str(world.guild.id),
        ServerSettings(
            moderation=ModerationPolicy(cooldown_after=0, **policy), moderators_chat_id=str(mods.id)
        ),
    )
    return mods


async def test_blocked_output_is_withdrawn_and_reported_without_its_content(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    mods = await moderated_server(standin, world, bot)
    fake_m2her.enqueue(Error(1027, output_sensitive_type=2, after_chunks=4, chunk_delay=0.1))
    asked = await standin.user_says(
        world.general, world.alice, "secret words", mentions=[standin.bot]
    )
    character = bot.manager.characters.get("aria")
    blocked = character.render(character.blocked_reply, user="Alice")
    replacement = await standin.wait_for_message(
        world.general, lambda m: m.content == blocked, after=asked
    )
    record = await standin.wait_for_message(mods)
    partial = [m for m in world.general.messages if m.id != replacement.id and m.id > asked.id]
    assert partial, "the partial reply was shown while streaming"
    assert all(m.deleted for m in partial)
    link = f"https://discord.com/channels/{world.guild.id}/{world.general.id}/{asked.id}"
    assert record.content == (
        f"Content filter: Aria's reply to <@{world.alice.id}> in <#{world.general.id}> "
        f"({link}) was flagged as pornography."
    )
    assert not record.pings
    assert "secret words" not in record.content

    log = await command(standin, world.general, world.owner, "moderation log")
    assert f"a reply by <@{world.alice.id}>" in log.original.content
    assert "pornography" in log.original.content
    assert "secret words" not in log.original.content


async def test_blocked_input_gets_a_notice_and_a_record(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    mods = await moderated_server(standin, world, bot)
    fake_m2her.enqueue(Error(1026, input_sensitive_type=5))
    asked = await standin.user_says(world.general, world.alice, "rude", mentions=[standin.bot])
    notice = await standin.wait_for_message(world.general, after=asked)
    assert notice.webhook_id is None
    assert "rude" not in notice.content
    record = await standin.wait_for_message(mods)
    assert record.content.startswith(f"Content filter: A message by <@{world.alice.id}>")
    assert record.content.endswith("was flagged as abuse.")


async def test_a_silent_policy_posts_nothing_in_the_channel(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    mods = await moderated_server(standin, world, bot, on_blocked_output=ModerationAction.SILENT)
    fake_m2her.enqueue(Error(1027, output_sensitive_type=6, after_chunks=2), Reply())
    asked = await standin.user_says(world.general, world.alice, "shh", mentions=[standin.bot])
    await standin.wait_for_message(mods)
    after = await standin.user_says(world.general, world.alice, "next", mentions=[standin.bot])
    await final_reply(standin, world.general, after)
    between = [m for m in standin.bot_messages(world.general) if asked.id < m.id < after.id]
    assert between == []


async def test_flagged_input_that_is_still_answered_is_reported(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    mods = await moderated_server(standin, world, bot)
    fake_m2her.enqueue(Reply(input_sensitive_type=3))
    asked = await standin.user_says(world.general, world.alice, "buy now", mentions=[standin.bot])
    await final_reply(standin, world.general, asked)
    record = await standin.wait_for_message(mods)
    assert record.content.endswith("was flagged as advertisement.")


async def test_the_in_character_replacement_survives_a_deleted_webhook(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    asked = await standin.user_says(world.general, world.alice, "one", mentions=[standin.bot])
    first = await final_reply(standin, world.general, asked)
    del standin.world.webhooks[first.webhook_id]  # an admin removed it
    fake_m2her.enqueue(Error(1027, output_sensitive_type=2))
    asked = await standin.user_says(world.general, world.alice, "two", mentions=[standin.bot])
    character = bot.manager.characters.get("aria")
    blocked = character.render(character.blocked_reply, user="Alice")
    replacement = await standin.wait_for_message(
        world.general, lambda m: m.content.endswith(blocked), after=asked
    )
    assert replacement.webhook_id is None
    assert replacement.content == f"**Aria**\n{blocked}"


async def test_a_broken_character_edit_is_reported_in_the_moderators_channel(
    standin: DiscordStandIn, world: World, characters_dir: Path, tmp_path: Path
):
    mods = standin.create_text_channel(world.guild, "mods")
    environ = environ_for(standin, characters_dir, tmp_path / "run.sqlite3")
    reports: list[str] = []
    settings = Settings.from_environ(environ)
    async with open_engine(settings) as engine:
        await engine.manager.policies.set_server_settings(
            "discord", str(world.guild.id), ServerSettings(moderators_chat_id=str(mods.id))
        )
        services = engine.services(DeliveryMonitor("discord"))
        running = asyncio.create_task(run_discord(services, settings, report=reports.append))
        try:
            await standin.wait_for(lambda: reports, what="the start-up report")
            (characters_dir / "bram.yaml").write_text(
                "name: Bram\npersonality: [1, 2]\n", encoding="utf-8"
            )
            assert not await engine.watcher.check()  # broken: the last good Bram stays
            notice = await standin.wait_for_message(mods)
            assert notice.content.startswith("Character files have problems")
            assert "bram.yaml:1: description: field required" in notice.content
            assert engine.manager.characters.get("bram").name == "Bram Oakbarrel"
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running


async def first_moderators_notice(
    standin: DiscordStandIn,
    world: World,
    settings: Settings,
    subscribe: Callable[[BrokenCharactersHook], None] | None = None,
) -> tuple[str, list[str]]:
    """Runs Discord on an engine of ``settings`` (hooks subscribed by ``subscribe``, else as
    the engine does) until the first post in a new moderators' channel: its text, and the
    characters in use."""
    mods = standin.create_text_channel(world.guild, "mods")
    async with open_engine(settings) as engine:
        await engine.manager.policies.set_server_settings(
            "discord", str(world.guild.id), ServerSettings(moderators_chat_id=str(mods.id))
        )
        services = engine.services(DeliveryMonitor("discord"))
        if subscribe is not None:
            services = PlatformServices(engine.manager, services.delivery, subscribe)
        running = asyncio.create_task(run_discord(services, settings, report=lambda _: None))
        try:
            notice = await standin.wait_for_message(mods)
            return notice.content, engine.manager.characters.ids()
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running


async def test_character_files_broken_at_start_are_reported_once_discord_is_connected(
    standin: DiscordStandIn, world: World, characters_dir: Path, tmp_path: Path
):
    (characters_dir / "pip.yaml").write_text("name: Pip\n", encoding="utf-8")
    settings = Settings.from_environ(environ_for(standin, characters_dir, tmp_path / "s.sqlite3"))
    notice, in_use = await first_moderators_notice(standin, world, settings)
    assert "pip" not in in_use
    assert notice.startswith("Character files have problems")
    assert "pip.yaml:1: description: field required" in notice


async def test_a_report_made_before_discord_connects_waits_for_the_connection(
    standin: DiscordStandIn, world: World, characters_dir: Path, tmp_path: Path
):
    settings = Settings.from_environ(environ_for(standin, characters_dir, tmp_path / "w.sqlite3"))
    telling: list[asyncio.Future[None]] = []

    def tell_at_once(hook: BrokenCharactersHook) -> None:
        telling.append(asyncio.ensure_future(hook("Character files have problems: early")))

    notice, _ = await first_moderators_notice(standin, world, settings, tell_at_once)
    assert notice == "Character files have problems: early"
