"""The trigger policy, with a fixed clock and a seeded RNG so every case is exact."""

from __future__ import annotations

import random
from typing import Any

import pytest

from bot.characters.schema import Character
from bot.conversation.incoming import ConversationKey, Incoming
from bot.conversation.trigger import (
    Trigger,
    TriggerPolicy,
    TriggerSettings,
    addressed_character,
)

KEY = ConversationKey("test", "chan-1")
ARIA = Character(name="Aria", nicknames=["Ari"], description="A ship's navigator.")
BRAM = Character(name="Bram", description="A tavern keeper.")


class FixedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def message(text: str = "hello there", author: str = "u1", **facts: Any) -> Incoming:
    return Incoming(key=KEY, author_id=author, author_name=author, text=text, **facts)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def policy(clock: FixedClock) -> TriggerPolicy:
    return TriggerPolicy(clock=clock, rng=random.Random(7))


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        ({"is_direct": True}, Trigger.DIRECT),
        ({"mentions_bot": True}, Trigger.MENTION),
        ({"replies_to_bot": True}, Trigger.REPLY),
    ],
)
def test_addressed_messages_are_answered(
    policy: TriggerPolicy, facts: dict[str, Any], reason: Trigger
) -> None:
    decision = policy.decide(message(**facts), [ARIA])
    assert decision.answer
    assert decision.reason is reason
    assert decision.character is ARIA


def test_an_unaddressed_group_message_is_not_answered(policy: TriggerPolicy) -> None:
    assert not policy.decide(message("nice weather today"), [ARIA]).answer


def test_saying_a_name_or_nickname_as_a_word_triggers(policy: TriggerPolicy) -> None:
    assert policy.decide(message("what do you think, aria?"), [ARIA]).reason is Trigger.NAME
    assert policy.decide(message("Ari! over here", author="u2"), [ARIA]).reason is Trigger.NAME
    # A name inside another word is not the name.
    assert not policy.decide(message("the aria was lovely", author="u3"), [BRAM]).answer
    assert not policy.decide(message("Arianna said so", author="u4"), [ARIA]).answer


def test_the_named_character_of_a_scene_answers(policy: TriggerPolicy) -> None:
    decision = policy.decide(message("Bram, another round please"), [ARIA, BRAM])
    assert decision.character is BRAM
    assert addressed_character("Aria and Bram, listen", [BRAM, ARIA]) is ARIA


def test_an_unnamed_scene_message_goes_to_the_main_character(policy: TriggerPolicy) -> None:
    decision = policy.decide(message("hey bot", mentions_bot=True), [ARIA, BRAM])
    assert decision.character is ARIA


def test_answer_all_channels_answer_everything_but_foreign_mentions(
    policy: TriggerPolicy,
) -> None:
    settings = TriggerSettings(answer_all=True)
    assert policy.decide(message("anything"), [ARIA], settings).reason is Trigger.ANSWER_ALL
    assert not policy.decide(message("@bob look", mentions_others=True), [ARIA], settings).answer


def test_follow_up_window_belongs_to_the_user_who_talked(
    policy: TriggerPolicy, clock: FixedClock
) -> None:
    settings = TriggerSettings(follow_up_seconds=60)
    assert policy.decide(message("Aria, hi", author="alice"), [ARIA], settings).answer
    clock.now += 59
    follow = policy.decide(message("and another thing", author="alice"), [ARIA], settings)
    assert follow.reason is Trigger.FOLLOW_UP
    assert not policy.decide(message("me too", author="bob"), [ARIA], settings).answer
    clock.now += 61
    assert not policy.decide(message("still there?", author="alice"), [ARIA], settings).answer


def test_follow_up_does_not_butt_into_a_message_to_someone_else(
    policy: TriggerPolicy, clock: FixedClock
) -> None:
    policy.decide(message("Aria, hi", author="alice"), [ARIA])
    clock.now += 5
    assert not policy.decide(
        message("@bob are you coming?", author="alice", mentions_others=True), [ARIA]
    ).answer


def test_other_bots_are_ignored_unless_allowed_and_capped(policy: TriggerPolicy) -> None:
    bot: dict[str, Any] = {"author_is_bot": True, "mentions_bot": True}
    assert not policy.decide(message(author="otherbot", **bot), [ARIA]).answer

    settings = TriggerSettings(allow_bots=True, max_consecutive_bot_turns=2)
    answers = [
        policy.decide(message(author="otherbot", **bot), [ARIA], settings).answer for _ in range(3)
    ]
    assert answers == [True, True, False]
    # A human speaking resets the cap.
    policy.decide(message("hi all", author="human"), [ARIA], settings)
    assert policy.decide(message(author="otherbot", **bot), [ARIA], settings).answer


def test_random_chance_fades_with_time_since_last_addressed(clock: FixedClock) -> None:
    settings = TriggerSettings(random_chance=0.5, random_half_life_seconds=100)

    def joins(after: float, trials: int = 400) -> int:
        count = 0
        for seed in range(trials):
            policy = TriggerPolicy(clock=clock, rng=random.Random(seed))
            clock.now = 0.0
            policy.decide(message("Aria?", author="a"), [ARIA], settings)
            clock.now = after
            count += policy.decide(message("chatter", author="b"), [ARIA], settings).answer
        return count

    soon, late = joins(1.0), joins(1000.0)
    assert 150 < soon < 250  # about half
    assert late < 5  # 0.5 * 2**-10 ≈ 0.05 %


def test_random_chance_is_off_by_default(policy: TriggerPolicy, clock: FixedClock) -> None:
    policy.decide(message("Aria?", author="a"), [ARIA])
    clock.now += 1
    assert not any(policy.decide(message("chatter", author="b"), [ARIA]).answer for _ in range(200))
