"""Characters that speak first on Discord: ``/nudges`` through discord.py and the stand-in, on
an injected clock; a DM the user closed (50007) gets no more."""

from __future__ import annotations

from bot.conversation.incoming import ConversationKey
from bot.conversation.manager import ManagerSettings
from bot.conversation.nudges import NudgeDefaults
from bot.platforms.discord.checks import NOT_ADMIN
from tests.conversation.nudging import ahead, settle
from tests.discord.conftest import Bot, Harness, World, command, final_reply
from tests.standins.discord import DiscordStandIn

DEFAULTS = NudgeDefaults(quiet_minutes=60, quiet_hours="off", timezone="UTC", max_per_day=3)
SEND = "POST /channels/{channel_id}/messages"


def settings() -> ManagerSettings:
    return ManagerSettings(default_character="aria", nudges=DEFAULTS)


async def test_a_dm_after_opting_in_and_none_once_the_user_closed_it(
    standin: DiscordStandIn, harness: Harness, world: World
) -> None:
    clock = ahead(12)
    bot: Bot = await harness.start(settings(), now=clock)
    manager = bot.manager
    dm = standin.open_dm(world.alice)
    key = ConversationKey("discord", str(dm.id))
    asked = await standin.user_says(dm, world.alice, "just us")
    first = await final_reply(standin, dm, asked)
    await settle(manager)

    answered = await command(standin, dm, world.alice, "nudges on")
    assert answered.original.content.startswith("Characters may speak first here.")
    assert answered.original.ephemeral
    clock.advance(minutes=60)
    await settle(manager)
    nudge = await final_reply(standin, dm, first)
    assert nudge.content.startswith("**Aria**\nAria heard Alice")
    assert "7 messages in context" in nudge.content  # the history, not the reply again

    standin.close_dms(world.alice)
    calls = len(standin.calls)
    clock.advance(minutes=60)
    await settle(manager)
    refused = [c for c in standin.calls[calls:] if c.route == SEND and c.status == 403]
    assert refused
    assert refused[0].response["code"] == 50007
    plan = await manager.nudge_plan(key)
    assert not plan.settings.enabled
    assert plan.state.blocked_at == clock.at

    calls = len(standin.calls)
    clock.advance(days=2)
    await settle(manager)
    assert [c for c in standin.calls[calls:] if c.params.get("channel_id") == str(dm.id)] == []


async def test_in_a_channel_admins_set_nudges_with_slash_commands(
    standin: DiscordStandIn, harness: Harness, world: World
) -> None:
    clock = ahead(12)
    bot = await harness.start(settings(), now=clock)
    manager = bot.manager
    refused = await command(standin, world.general, world.alice, "nudges on")
    assert refused.original.content == NOT_ADMIN
    shown = await command(standin, world.general, world.alice, "nudges show")
    assert shown.original.content.startswith("Characters do not speak first here (off).")

    answered = await command(
        standin,
        world.general,
        world.owner,
        "nudges set",
        {"quiet_minutes": 30, "quiet_hours": "22:00 - 07:00", "timezone": "Europe/Berlin"},
    )
    text = answered.original.content
    assert "After 30 minutes without a message, a character opens a topic." in text
    assert "Quiet hours: 22:00-07:00 (Europe/Berlin)." in text
    bad = await command(
        standin, world.general, world.owner, "nudges set", {"schedule": "0 25 * * *"}
    )
    assert bad.original.content == "schedule: hour: 25 is not between 0 and 23"
    await command(standin, world.general, world.owner, "nudges on")

    before = await standin.user_says(world.general, world.alice, "anyone?")
    clock.advance(minutes=30)  # 13:30 in Berlin
    await settle(manager)
    nudge = await final_reply(standin, world.general, before)
    assert nudge.content.startswith("Aria heard")
