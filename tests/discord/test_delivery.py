"""Delivery on Discord, through discord.py and the Discord stand-in: a reply the channel
refuses is not history, every part of a long reply finds its character, and blank messages
cost no model call."""

from __future__ import annotations

import discord

from bot.conversation.notices import UNDELIVERED_NOTICE
from bot.conversation.trigger import TriggerSettings
from bot.llm.fake import FakeM2Her
from bot.llm.fake.script import Reply
from bot.platforms.discord.events import conversation_key as conversation_key_of
from tests.discord.conftest import Bot, World, eventually, final_reply
from tests.observability.scrape import value
from tests.standins.discord import DiscordStandIn, Permission


def _can_post(bot: Bot, world: World) -> bool:
    channel = bot.client.get_channel(world.general.id)
    guild = bot.client.get_guild(world.guild.id)
    assert isinstance(channel, discord.TextChannel)
    assert guild is not None
    return channel.permissions_for(guild.me).send_messages


async def test_a_reply_the_channel_refuses_is_undelivered_and_stays_out_of_prompts(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    bot_role = next(r for r in world.guild.roles.values() if r.bot_id == standin.bot.id)
    standin.set_overwrite(
        world.general, bot_role, deny=Permission.SEND_MESSAGES | Permission.MANAGE_WEBHOOKS
    )
    await standin.wait_for(lambda: not _can_post(bot, world))
    fake_m2her.enqueue(Reply(text="Words into the void."))
    await standin.user_says(world.general, world.alice, "anyone?", mentions=[standin.bot])

    def undelivered() -> float | None:
        metrics = bot.manager.metrics.render()
        return value(metrics, "troupe_replies_undelivered_total", platform="discord")

    await standin.wait_for(undelivered, what="the undelivered reply counted")
    standin.set_overwrite(world.general, bot_role)
    await standin.wait_for(lambda: _can_post(bot, world))
    asked = await standin.user_says(world.general, world.alice, "now?", mentions=[standin.bot])
    await final_reply(standin, world.general, asked)
    sent = [m["content"] for m in fake_m2her.requests[-1].body["messages"]]
    assert "anyone?" in sent
    assert "Words into the void." not in sent
    # The channel refused the bot itself: no notice is owed there.
    posted = [m.content for m in standin.bot_messages(world.general)]
    assert UNDELIVERED_NOTICE not in posted


async def test_a_reply_to_a_later_part_finds_its_character_without_reading_history(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    # Without Read Message History the bot cannot walk back to a reply's first part.
    bot_role = next(r for r in world.guild.roles.values() if r.bot_id == standin.bot.id)
    standin.set_overwrite(world.general, bot_role, deny=Permission.READ_MESSAGE_HISTORY)
    key = conversation_key_of(world.general)
    await bot.manager.add_to_scene(key, "bram")
    # Only Bram answers here: characters do not answer each other.
    await bot.manager.policies.set_chat_settings(key, TriggerSettings(scene_turns=1))
    tale = " ".join(f"Part of Bram's long tale, line {n}." for n in range(150)) + " The end."
    fake_m2her.enqueue(Reply(text=tale))
    called = await standin.user_says(world.general, world.alice, "Bram, a long tale please")
    await standin.wait_for(
        lambda: any(m.content.endswith("The end.") for m in standin.bot_messages(world.general))
    )
    parts = [m for m in standin.bot_messages(world.general) if m.id > called.id]
    assert len(parts) == 3
    last = parts[-1]

    async def stored() -> bool:
        key = conversation_key_of(world.general)
        return await bot.manager.character_of_message(key, str(last.id)) is not None

    await eventually(stored)
    follow = await standin.user_says(world.general, world.alice, "go on", reply_to=last)
    reply = await final_reply(standin, world.general, follow)
    assert reply.author.username == "Bram Oakbarrel"


async def test_blank_messages_cost_no_model_call(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    await standin.user_says(world.general, world.alice, "   ", mentions=[standin.bot])
    await standin.user_says(world.general, world.alice, "\u200b\u2060", mentions=[standin.bot])
    asked = await standin.user_says(world.general, world.alice, "hi", mentions=[standin.bot])
    await final_reply(standin, world.general, asked)
    assert len(fake_m2her.requests) == 1
    sent = fake_m2her.requests[0].body["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == ["hi"]
