"""Trigger rules from command words (the shared bot/platforms/triggers.py), and /triggers."""

from __future__ import annotations

import pytest

from bot.conversation.trigger import TriggerSettings
from bot.platforms.telegram.app import TelegramBot
from bot.platforms.triggers import change_triggers, describe_triggers
from tests.standins.telegram import TelegramStandIn
from tests.telegram.conftest import WAIT

DEFAULTS = TriggerSettings()


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["answer_all", "on"], TriggerSettings(answer_all=True)),
        (["ANSWER_ALL", "Off"], TriggerSettings(answer_all=False)),
        (["follow_up", "30"], TriggerSettings(follow_up_seconds=30)),
        (["random", "0.25"], TriggerSettings(random_chance=0.25)),
        (["random", "0.1", "60"], TriggerSettings(random_chance=0.1, random_half_life_seconds=60)),
        (["bots", "on"], TriggerSettings(allow_bots=True)),
        (["bots", "on", "2"], TriggerSettings(allow_bots=True, max_consecutive_bot_turns=2)),
    ],
)
def test_words_change_one_rule(words: list[str], expected: TriggerSettings) -> None:
    assert change_triggers(DEFAULTS, words) == expected


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ([], "Say what to change"),
        (["answer_all", "maybe"], "'maybe' is not on or off"),
        (["follow_up", "soon"], "'soon' is not a number"),
        (["follow_up", "7200"], "7200 is not between 0 and 3600"),
        (["random", "2"], "2 is not between 0 and 1"),
        (["bots", "on", "50"], "50 is not between 1 and 20"),
        (["volume", "11"], "Unknown setting 'volume 11'"),
    ],
)
def test_wrong_words_say_what_is_wrong(words: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        change_triggers(DEFAULTS, words)


def test_the_rules_in_plain_words() -> None:
    assert describe_triggers(DEFAULTS).splitlines() == [
        "Answers when addressed.",
        "Follow-up window: 90 s.",
        "Never joins in uninvited.",
        "Ignores other bots.",
    ]
    busy = TriggerSettings(answer_all=True, random_chance=0.2, allow_bots=True)
    assert describe_triggers(busy).splitlines() == [
        "Answers every message.",
        "Follow-up window: 90 s.",
        "Random chance to join in: 20%, halving every 600 s.",
        "Answers other bots, at most 3 in a row.",
    ]


async def test_group_admins_set_the_triggers(tg: TelegramStandIn, bot: TelegramBot) -> None:
    alice, bob = tg.add_user("Alice"), tg.add_user("Bob")
    group = tg.group("Tavern", [alice, bob], admins=[alice])

    async def said(text: str) -> None:
        await tg.wait_until(
            lambda: any(text in m.text for m in group.bot_messages()), timeout=WAIT, what=text
        )

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
