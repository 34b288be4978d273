"""Messages in, characters' replies out: the trigger facts the adapter supplies, posting."""

from __future__ import annotations

from tests.discord.conftest import Bot, World
from tests.standins.discord import DiscordStandIn


async def test_a_mention_gets_a_reply_through_the_channel_webhook(
    standin: DiscordStandIn, world: World, bot: Bot
):
    asked = await standin.user_says(
        world.general, world.alice, "hello there", mentions=[standin.bot]
    )
    reply = await standin.wait_for_message(world.general, after=asked)
    assert reply.webhook_id is not None
    assert reply.author.username == "Aria"
    assert "hello there" in reply.content
    assert not reply.pings
    assert all(url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:")) for url in bot.seen_urls)
