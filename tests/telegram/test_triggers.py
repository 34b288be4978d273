"""/triggers: group admins set when characters speak (the words: tests/conversation)."""

from __future__ import annotations

import functools

from bot.platforms.telegram.app import TelegramBot
from tests.standins.telegram import TelegramStandIn
from tests.telegram.conftest import WAIT, said_back


async def test_group_admins_set_the_triggers(tg: TelegramStandIn, bot: TelegramBot) -> None:
    alice, bob = tg.add_user("Alice"), tg.add_user("Bob")
    group = tg.group("Tavern", [alice, bob], admins=[alice])

    said = functools.partial(said_back, tg, group)

    tg.user_says(group, bob, "/triggers answer_all on")
    await said("Only the group's admins")
    tg.user_says(group, alice, "/triggers follow_up soon")
    await said("'soon' is not a number")
    tg.user_says(group, alice, "/triggers answer_all on")
    await said("Answers every message.")
    tg.user_says(group, bob, "nobody addressed anyone")
    await said("Aria heard Bob: “nobody addressed anyone”")
    dm = tg.private_chat(alice)
    tg.user_says(dm, alice, "/triggers")
    await tg.wait_until(
        lambda: any("answer every message" in m.text for m in dm.bot_messages()), timeout=WAIT
    )
