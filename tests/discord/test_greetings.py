"""A channel opened with `/character set` starts with the character's greeting; group-only
greetings open server channels, never direct messages (the real discord.py against the
stand-in)."""

from __future__ import annotations

from tests.discord.conftest import Harness, World, command, final_reply
from tests.standins.discord import DiscordStandIn

#: A character whose only greeting is for groups: whether it is posted depends on the chat
#: alone, never on which greeting a random pick chose.
CRIER = """\
name: Town Crier
description: "{{char}} announces the news of the square."
group_only_greetings: ["Hear ye, {{user}} and all assembled!"]
"""


async def test_a_server_channel_opens_with_a_group_only_greeting(
    standin: DiscordStandIn, harness: Harness, world: World
) -> None:
    (harness.characters_dir / "crier.yaml").write_text(CRIER, encoding="utf-8")
    await harness.start()

    bound = await command(standin, world.general, world.owner, "character set", {"name": "crier"})
    assert bound.original.content == "Now talking to Town Crier."

    greeting = await standin.wait_for_message(world.general, after=bound.original)
    assert greeting.content == "Hear ye, tavern-owner and all assembled!"
    assert greeting.author.username == "Town Crier"


async def test_a_direct_message_never_gets_a_group_only_greeting(
    standin: DiscordStandIn, harness: Harness, world: World
) -> None:
    (harness.characters_dir / "crier.yaml").write_text(CRIER, encoding="utf-8")
    await harness.start()
    dm = standin.open_dm(world.alice)

    bound = await command(standin, dm, world.alice, "character set", {"name": "crier"})
    assert bound.original.content == "Now talking to Town Crier."
    asked = await standin.user_says(dm, world.alice, "any news?")
    reply = await final_reply(standin, dm, asked)

    # Only the command's answer came before the user spoke; then the reply.
    assert [m.id for m in standin.bot_messages(dm)] == [bound.original.id, reply.id]
    assert reply.content.startswith("**Town Crier**\n")


async def test_a_direct_message_opens_with_the_characters_own_greeting(
    standin: DiscordStandIn, harness: Harness, world: World
) -> None:
    await harness.start()
    dm = standin.open_dm(world.alice)

    bound = await command(standin, dm, world.alice, "character set", {"name": "mara"})

    greeting = await standin.wait_for_message(dm, after=bound.original)
    assert greeting.content.startswith("**Mara Quill**\n")
    # Set again, with a conversation under way: no second greeting.
    again = await command(standin, dm, world.alice, "character set", {"name": "mara"})
    assert again.original.content == "Now talking to Mara Quill."
    asked = await standin.user_says(dm, world.alice, "a case for you")
    reply = await final_reply(standin, dm, asked)
    posted = [m.id for m in standin.bot_messages(dm)]
    assert posted == [bound.original.id, greeting.id, again.original.id, reply.id]
