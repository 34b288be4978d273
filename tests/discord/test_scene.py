"""A scene on Discord: characters answer each other through the channel's webhook, each
under its own name, until the budget is spent or a human types."""

from __future__ import annotations

from bot.conversation.director import Director
from bot.llm.fake import FakeM2Her
from bot.llm.fake.script import Reply
from bot.platforms.discord.events import conversation_key as conversation_key_of
from tests.conversation.test_director import FixedChance
from tests.discord.conftest import Bot, World, final_reply
from tests.standins.discord import DiscordStandIn

TURNS_SECONDS = 10.0


async def bram_joins(bot: Bot, world: World) -> None:
    """Bram joins Aria in the channel; unaddressed chained turns always happen."""
    bot.manager.director = Director(rng=FixedChance(0.0))
    await bot.manager.add_to_scene(conversation_key_of(world.general), "bram")


async def test_characters_answer_each_other_through_webhooks_within_the_budget(
    standin: DiscordStandIn, world: World, bot: Bot
):
    await bram_joins(bot, world)
    asked = await standin.user_says(world.general, world.alice, "Aria, hello")
    aria = await final_reply(standin, world.general, asked)
    bram = await final_reply(standin, world.general, aria)
    await bot.client.messages.drain(TURNS_SECONDS)  # the message's task, chain included
    assert (aria.author.username, bram.author.username) == ("Aria", "Bram Oakbarrel")
    assert aria.webhook_id is not None
    assert bram.webhook_id is not None
    # Bram answered what Aria said (the fake echoes the last line it was given).
    assert bram.content.startswith("Bram Oakbarrel heard Aria:")
    after = [m for m in standin.bot_messages(world.general) if m.id > asked.id]
    assert [m.id for m in after] == [aria.id, bram.id]  # the default budget: two turns


async def test_a_member_typing_ends_the_chain(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
):
    await bram_joins(bot, world)
    fake_m2her.enqueue(Reply(delay=0.5))
    asked = await standin.user_says(world.general, world.alice, "Aria, hello")
    await standin.wait_for(lambda: len(fake_m2her.requests) == 1)
    await standin.user_types(world.general, world.alice)
    await final_reply(standin, world.general, asked)
    await bot.client.messages.drain(TURNS_SECONDS)  # the message's task, chain included
    assert len(fake_m2her.requests) == 1
    after = [m for m in standin.bot_messages(world.general) if m.id > asked.id]
    assert [m.author.username for m in after] == ["Aria"]
