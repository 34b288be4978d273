"""Start-up: configuration, the invite link, plain-words checks, sharding, run_discord."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qs, urlparse

import discord
import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.app import open_engine
from bot.observability.delivery import DeliveryMonitor
from bot.platforms.discord import (
    ConfigError,
    DiscordConfig,
    DiscordSetupError,
    ShardedTroupeClient,
    invite_url,
    run_discord,
)
from bot.platforms.discord.permissions import MESSAGE_CONTENT_MISSING
from bot.settings import Settings
from tests.discord.conftest import Harness, World, config_for, environ_for, final_reply
from tests.standins.discord import DiscordStandIn, Intent, Permission, loopback_only_trace


def config_from(environ: dict[str, str]) -> DiscordConfig:
    return DiscordConfig.from_settings(Settings.from_environ(environ).discord)


def test_config_reads_the_environment_and_hides_the_token():
    config = config_from(
        {
            "DISCORD_TOKEN": "secret-token",
            "DISCORD_API_BASE_URL": "http://127.0.0.1:9/api/v10",
            "DISCORD_GATEWAY_URL": "ws://127.0.0.1:9/gateway",
            "DISCORD_SHARD_COUNT": "4",
            "DISCORD_SHARD_IDS": "1, 3",
            "DISCORD_EDIT_INTERVAL": "0.8",
        }
    )
    assert config.sharded
    assert (config.shard_count, config.shard_ids, config.edit_interval) == (4, (1, 3), 0.8)
    assert config.api_base_url == "http://127.0.0.1:9/api/v10"
    assert "secret-token" not in repr(config)
    auto = config_from({"DISCORD_TOKEN": "t", "DISCORD_SHARD_COUNT": "auto"})
    assert auto.sharded
    assert auto.shard_count is None
    assert not config_from({"DISCORD_TOKEN": "t"}).sharded


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({}, "DISCORD_TOKEN is not set"),
        ({"DISCORD_SHARD_COUNT": "many"}, "DISCORD_SHARD_COUNT must be a number or 'auto'"),
        ({"DISCORD_SHARD_COUNT": "0"}, "DISCORD_SHARD_COUNT must be at least 1"),
        ({"DISCORD_SHARD_IDS": "0"}, "DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT"),
        ({"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "2"}, "outside 0..1"),
        ({"DISCORD_EDIT_INTERVAL": "soon"}, "DISCORD_EDIT_INTERVAL must be a number"),
    ],
)
def test_config_errors_say_what_to_fix(environ: dict[str, str], says: str):
    if environ:
        environ = {"DISCORD_TOKEN": "t", **environ}
    with pytest.raises(ConfigError, match=says):
        config_from(environ)


def test_the_invite_link_asks_for_the_permissions_characters_need():
    url = urlparse(invite_url(1234))
    query = parse_qs(url.query)
    assert (url.netloc, url.path) == ("discord.com", "/oauth2/authorize")
    assert query["client_id"] == ["1234"]
    assert set(query["scope"][0].split()) == {"bot", "applications.commands"}
    granted = discord.Permissions(int(query["permissions"][0]))
    assert granted.send_messages
    assert granted.manage_webhooks
    assert granted.read_message_history
    assert granted.send_messages_in_threads
    assert not granted.administrator


async def test_start_prints_the_invite_link_and_explains_missing_permissions(
    harness: Harness, world: World
):
    standin = harness.standin
    quiet = standin.create_text_channel(world.guild, "quiet")
    bot_role = next(r for r in world.guild.roles.values() if r.bot_id == standin.bot.id)
    standin.set_overwrite(
        quiet, bot_role, deny=Permission.MANAGE_WEBHOOKS | Permission.READ_MESSAGE_HISTORY
    )
    hidden = standin.create_text_channel(world.guild, "hidden")
    standin.set_overwrite(hidden, bot_role, deny=Permission.VIEW_CHANNEL)
    bot = await harness.start()
    assert bot.reports[0] == (
        f"Discord: logged in as {bot.client.user}. "
        f"Invite link: {invite_url(standin.application_id)}"
    )
    problems = bot.reports[1:]
    assert len(problems) == 2
    assert problems[0].startswith(
        'Discord: In server "Tavern" the bot lacks Read Message History in #quiet'
    )
    assert problems[1].startswith(
        'Discord: In server "Tavern" the bot lacks Manage Webhooks in #quiet'
    )
    assert "own name and avatar" in problems[1]
    assert not any("#hidden" in line or "#general" in line for line in problems)
    (session,) = standin.gateway.ready_sessions
    assert session.intents & Intent.MESSAGE_CONTENT
    assert session.intents & Intent.GUILD_MESSAGES
    # Typing ends a scene's chain of characters; members and presences stay off.
    assert session.intents & Intent.GUILD_MESSAGE_TYPING
    assert not session.intents & (Intent.GUILD_MEMBERS | Intent.GUILD_PRESENCES)


async def test_without_the_message_content_intent_start_stops_with_an_explanation(
    fake_m2her, m2her_client, characters_dir, tmp_path
):
    async with DiscordStandIn(message_content_intent=False) as standin:
        config = DiscordConfig(
            token=standin.token,
            api_base_url=standin.api_base_url,
            gateway_url=standin.gateway_url,
            guild_ready_timeout=0.05,
        )
        harness = Harness(
            standin,
            fake_m2her,
            f"sqlite+aiosqlite:///{tmp_path / 'intent.sqlite3'}",
            characters_dir,
            m2her_client,
            config,
        )
        from bot.platforms.discord.client import pointed_at

        with pointed_at(config), pytest.raises(DiscordSetupError) as stopped:
            await harness.start()
        assert str(stopped.value) == MESSAGE_CONTENT_MISSING
        assert "Privileged Gateway Intents" in str(stopped.value)
        assert standin.gateway.identify_payloads == []


async def test_run_discord_uses_the_environment_and_restores_discord_py(
    standin: DiscordStandIn, world: World, characters_dir, tmp_path
):
    environ = environ_for(standin, characters_dir, tmp_path / "run.sqlite3")
    before = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    reports: list[str] = []
    seen: list[str] = []
    settings = Settings.from_environ(environ)
    async with open_engine(settings) as engine:
        running = asyncio.create_task(
            run_discord(
                engine.services(DeliveryMonitor("discord")),
                settings,
                report=reports.append,
                http_trace=loopback_only_trace(seen),
            )
        )
        try:
            await standin.wait_for(lambda: reports, what="the start-up report")
            asked = await standin.user_says(
                world.general, world.alice, "hi", mentions=[standin.bot]
            )
            reply = await final_reply(standin, world.general, asked)
            assert reply.author.username == "Aria"
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
    assert before == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    assert seen
    assert all(url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:")) for url in seen)


async def test_sharded_client_answers_in_guilds_on_every_shard(
    fake_m2her, m2her_client, characters_dir, tmp_path
):
    async with DiscordStandIn(shard_count=2) as standin:
        zero = standin.create_guild("Zero", shard=(0, 2))
        one = standin.create_guild("One", shard=(1, 2))
        channels = [standin.create_text_channel(g, "general") for g in (zero, one)]
        people = [standin.create_member(g, "alice", global_name="Alice") for g in (zero, one)]
        config = config_for(standin, auto_shard=True)
        harness = Harness(
            standin,
            fake_m2her,
            f"sqlite+aiosqlite:///{tmp_path / 'shards.sqlite3'}",
            characters_dir,
            m2her_client,
            config,
        )
        from bot.platforms.discord.client import pointed_at

        with pointed_at(config):
            bot = await harness.start()
            try:
                assert isinstance(bot.client, ShardedTroupeClient)
                assert bot.client.shard_count == 2
                sessions = sorted(standin.gateway.ready_sessions, key=lambda s: s.shard_id)
                assert [(s.shard_id, s.shard_count) for s in sessions] == [(0, 2), (1, 2)]
                for channel, person in zip(channels, people, strict=True):
                    asked = await standin.user_says(
                        channel, person, "hello shard", mentions=[standin.bot]
                    )
                    await final_reply(standin, channel, asked)
            finally:
                await harness.stop(bot)
        assert standin.calls_to("GET /gateway/bot")
