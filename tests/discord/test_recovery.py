"""Turns owed are resumed on Discord: messages stored while the bot shut down are answered
after the restart, in channels, threads and DMs, without anyone writing again."""

from __future__ import annotations

from bot.conversation.incoming import ConversationKey
from tests.discord.conftest import Harness, World, eventually, final_reply


async def test_messages_stored_during_shutdown_are_answered_after_the_restart(
    harness: Harness, world: World
) -> None:
    standin = harness.standin
    thread = standin.create_thread(world.general, "side quest", owner=world.alice)
    dm = standin.open_dm(world.alice)
    first = await harness.start()
    first.manager.stop_answering()
    asked = [
        await standin.user_says(
            world.general, world.alice, "in the channel", mentions=[standin.bot]
        ),
        await standin.user_says(thread, world.alice, "in the thread", mentions=[standin.bot]),
        await standin.user_says(dm, world.alice, "in private"),
    ]

    async def all_stored() -> bool:
        return len(await first.storage.owed_turns("discord")) == 3

    await eventually(all_stored)
    await harness.stop(first)

    second = await harness.start()
    for channel, message in zip((world.general, thread, dm), asked, strict=True):
        reply = await final_reply(standin, channel, message)
        assert f"“{message.content.split('> ')[-1]}”" in reply.content

    async def nothing_owed() -> bool:
        return await second.storage.owed_turns("discord") == []

    await eventually(nothing_owed)
    assert len(harness.fake.requests) == 3


async def test_no_sink_is_made_for_a_channel_that_is_gone(harness: Harness, world: World) -> None:
    bot = await harness.start()
    assert await bot.client.resumed_sink(ConversationKey("discord", "424242")) is None
    assert await bot.client.resumed_sink(ConversationKey("discord", str(world.general.id)))
