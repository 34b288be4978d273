"""/channel lorebooks: admins attach world books to a channel (the words: tests/characters/lore)."""

from __future__ import annotations

from bot.llm.fake import FakeM2Her
from bot.platforms.discord.checks import NOT_ADMIN
from tests.discord.conftest import Bot, World, command, final_reply
from tests.standins.discord import DiscordStandIn


async def test_admins_attach_a_world_book_to_the_channel(
    standin: DiscordStandIn, world: World, bot: Bot, fake_m2her: FakeM2Her
) -> None:
    shown = await command(standin, world.general, world.alice, "channel lorebooks")
    assert shown.original.content == (
        "World books in this chat: none.\nAvailable: port-sable (Port Sable)."
    )
    refused = await command(
        standin, world.general, world.alice, "channel lorebooks", {"add": "port-sable"}
    )
    assert refused.original.content == NOT_ADMIN
    added = await command(
        standin, world.general, world.owner, "channel lorebooks", {"add": "port-sable"}
    )
    assert added.original.content.startswith("World books in this chat: port-sable")
    said = await standin.user_says(world.general, world.alice, "Aria, what about the docks?")
    await final_reply(standin, world.general, said)
    system = fake_m2her.requests[-1].body["messages"][0]["content"]
    assert "Pier 9 belongs to the Halloran Shipping Company" in system
