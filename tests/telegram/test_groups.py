"""Groups: which messages a character answers, forum topics, edits and privacy mode."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest

from bot.conversation.incoming import ConversationKey
from bot.conversation.manager import ConversationManager, ManagerSettings
from bot.conversation.policy import ChatPolicy, Limits, PolicyTree
from bot.conversation.trigger import TriggerPolicy, TriggerSettings
from bot.llm.fake import FakeM2Her
from bot.platforms.telegram.app import TelegramBot
from tests.standins.telegram import Chat, Message, TelegramStandIn, User
from tests.telegram.conftest import WAIT, BotFactory, ManagerFactory, config_for


async def _answers(
    tg: TelegramStandIn, chat: Chat, count: int, thread: int | None = None
) -> list[Message]:
    """Wait until the bot has posted ``count`` finished replies in ``chat``; return them."""

    def ours() -> list[Message]:
        return [m for m in chat.bot_messages(thread_id=thread) if m.sender.username == "troupe_bot"]

    def done() -> bool:
        posted = ours()
        return len(posted) == count and all(m.text.endswith("context)") for m in posted)

    await tg.wait_until(done, timeout=WAIT, what=f"{count} replies")
    return ours()


def _quoted(tg: TelegramStandIn, reply: Message) -> int | None:
    """The message id the reply's sendMessage quoted."""
    for call in tg.calls_to("sendMessage", ok=True):
        if call.result and call.result["message_id"] == reply.message_id:
            parameters: dict[str, Any] | None = call.params.get("reply_parameters")
            return parameters["message_id"] if parameters else None
    raise AssertionError("no sendMessage posted that reply")


@pytest.fixture
def people(tg: TelegramStandIn) -> tuple[User, User, Chat]:
    alice, bob = tg.add_user("Alice", "alice"), tg.add_user("Bob", "bob")
    return alice, bob, tg.group("Tavern", [alice, bob], admins=[alice])


async def test_each_group_trigger_and_what_is_left_alone(
    tg: TelegramStandIn, bot: TelegramBot, people: tuple[User, User, Chat]
) -> None:
    alice, bob, group = people
    tg.user_says(group, alice, "just chatting among ourselves")
    mention = tg.user_says(group, alice, "hi @troupe_bot")
    (first,) = await _answers(tg, group, 1)
    assert _quoted(tg, first) == mention.message_id
    assert "chatting" not in first.text  # answered the mention; the chatter is only context

    reply = tg.user_says(group, bob, "you again?", reply_to=first)
    second = (await _answers(tg, group, 2))[-1]
    assert _quoted(tg, second) == reply.message_id

    named = tg.user_says(group, alice, "Aria, what is that book?")
    assert _quoted(tg, (await _answers(tg, group, 3))[-1]) == named.message_id

    command_alias = tg.user_says(group, bob, "ari, the archivist knows")  # a nickname
    assert _quoted(tg, (await _answers(tg, group, 4))[-1]) == command_alias.message_id

    tg.user_says(group, bob, "@alice look at this")  # someone else's mention: never butt in
    barrier = tg.user_says(group, alice, "@troupe_bot still there?")
    assert _quoted(tg, (await _answers(tg, group, 5))[-1]) == barrier.message_id


async def test_follow_up_window_answers_the_same_person_without_a_mention(
    tg: TelegramStandIn, bot: TelegramBot, people: tuple[User, User, Chat]
) -> None:
    alice, bob, group = people
    tg.user_says(group, alice, "@troupe_bot hello")
    await _answers(tg, group, 1)
    follow = tg.user_says(group, alice, "and another thing")
    assert _quoted(tg, (await _answers(tg, group, 2))[-1]) == follow.message_id
    tg.user_says(group, bob, "me too")  # Bob was not being answered
    barrier = tg.user_says(group, bob, "@troupe_bot ok now me")
    assert _quoted(tg, (await _answers(tg, group, 3))[-1]) == barrier.message_id


class _AlwaysLucky(random.Random):
    def random(self) -> float:
        return 0.0


async def test_random_chance_and_the_bot_loop_guard(
    tg: TelegramStandIn,
    make_manager: ManagerFactory,
    start_bot: BotFactory,
) -> None:
    manager = await make_manager(trigger=TriggerPolicy(rng=_AlwaysLucky()))
    await start_bot(manager)
    alice, bob, robot = (
        tg.add_user("Alice"),
        tg.add_user("Bob"),
        tg.add_user("Helper", "helper_bot"),
    )
    robot.is_bot = True
    group = tg.group("Tavern", [alice, bob, robot])
    key = ConversationKey("telegram", str(group.id))
    await manager.policies.set_chat_settings(
        key, TriggerSettings(follow_up_seconds=0, random_chance=0.5, max_consecutive_bot_turns=1)
    )
    tg.user_says(group, alice, "@troupe_bot hello")
    await _answers(tg, group, 1)
    chance = tg.user_says(group, bob, "unaddressed, but lucky")
    assert _quoted(tg, (await _answers(tg, group, 2))[-1]) == chance.message_id

    tg.user_says(group, robot, "@troupe_bot beep")
    barrier = tg.user_says(group, alice, "@troupe_bot and you?")
    assert _quoted(tg, (await _answers(tg, group, 3))[-1]) == barrier.message_id

    await manager.policies.set_chat_settings(
        key, TriggerSettings(follow_up_seconds=0, allow_bots=True, max_consecutive_bot_turns=1)
    )
    tg.user_says(group, robot, "@troupe_bot beep one")
    assert "beep one" in (await _answers(tg, group, 4))[-1].text  # one bot turn is allowed
    tg.user_says(group, robot, "@troupe_bot beep two")  # a second in a row is not
    barrier = tg.user_says(group, alice, "@troupe_bot done?")
    assert _quoted(tg, (await _answers(tg, group, 5))[-1]) == barrier.message_id


async def test_a_forum_topic_is_its_own_conversation(
    tg: TelegramStandIn, bot: TelegramBot, fake_m2her: FakeM2Her
) -> None:
    alice = tg.add_user("Alice", "alice")
    forum = tg.group("Forum", [alice], forum=True, admins=[alice])
    lore, tavern = tg.add_topic(forum, "Lore"), tg.add_topic(forum, "Tavern")
    tg.user_says(forum, alice, "plain words in a topic", thread_id=lore)  # not a reply to us
    tg.user_says(forum, alice, "@troupe_bot hello from lore", thread_id=lore)
    (in_lore,) = await _answers(tg, forum, 1, thread=lore)
    assert in_lore.thread_id == lore
    assert _user_turns(fake_m2her) == ["plain words in a topic", "@troupe_bot hello from lore"]
    tg.user_says(forum, alice, "@troupe_bot hello from the tavern", thread_id=tavern)
    (in_tavern,) = await _answers(tg, forum, 1, thread=tavern)
    assert in_tavern.thread_id == tavern
    assert _user_turns(fake_m2her) == ["@troupe_bot hello from the tavern"]  # no lore here
    assert len(forum.bot_messages()) == 2


def _user_turns(fake: FakeM2Her) -> list[str]:
    """What the humans said, as the newest request to the model shows it."""
    messages = fake.requests[-1].body["messages"]
    return [m["content"] for m in messages if m["role"] == "user"]


async def test_an_edited_message_changes_the_history(
    tg: TelegramStandIn, bot: TelegramBot, fake_m2her: FakeM2Her
) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    first = tg.user_says(dm, alice, "my name is Alcie")
    await _answers(tg, dm, 1)
    tg.user_edits(first, "my name is Alice")
    await tg.wait_until(lambda: not tg.pending_updates, timeout=WAIT)
    tg.user_says(dm, alice, "do you remember?")
    await _answers(tg, dm, 2)
    said = _user_turns(fake_m2her)
    assert "my name is Alice" in said
    assert "my name is Alcie" not in said


async def test_privacy_mode_is_explained_at_start(
    tg: TelegramStandIn,
    manager: ConversationManager,
    start_bot: BotFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tg.can_read_all_group_messages = False
    with caplog.at_level(logging.WARNING, logger="bot.platforms.telegram"):
        await start_bot(manager, config=config_for(tg))
    assert "Privacy mode is on for @troupe_bot" in caplog.text
    assert "/setprivacy" in caplog.text


async def test_no_privacy_warning_when_the_bot_reads_everything(
    tg: TelegramStandIn,
    manager: ConversationManager,
    start_bot: BotFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.platforms.telegram"):
        await start_bot(manager)
    assert "Privacy mode" not in caplog.text


async def test_group_admins_are_spared_the_rate_limit_with_one_admin_lookup(
    tg: TelegramStandIn,
    make_manager: ManagerFactory,
    start_bot: BotFactory,
    people: tuple[User, User, Chat],
) -> None:
    one_a_minute = ChatPolicy(limits=Limits(user_messages_per_minute=1))
    settings = ManagerSettings(default_character="aria", policy=PolicyTree(base=one_a_minute))
    await start_bot(await make_manager(settings=settings))
    alice, bob, group = people  # Alice is the admin
    for n in (1, 2):
        tg.user_says(group, alice, f"@troupe_bot admin message {n}")
        await _answers(tg, group, n)
    tg.user_says(group, bob, "@troupe_bot member message 1")
    await _answers(tg, group, 3)
    tg.user_says(group, bob, "@troupe_bot member message 2")
    await tg.wait_until(
        lambda: "writing faster" in group.bot_messages()[-1].text, timeout=WAIT, what="a refusal"
    )
    assert len(tg.calls_to("getChatAdministrators")) == 1  # cached for a minute


async def test_a_photo_caption_is_read_as_what_the_message_says(
    tg: TelegramStandIn,
    bot: TelegramBot,
    people: tuple[User, User, Chat],
    fake_m2her: FakeM2Her,
) -> None:
    alice, bob, group = people
    # The mention is a caption entity: privacy mode lets it through, and it is a trigger.
    captioned = tg.user_says(group, alice, "@troupe_bot what is on this map?", photo=True)
    (first,) = await _answers(tg, group, 1)
    assert _quoted(tg, first) == captioned.message_id
    assert _user_turns(fake_m2her)[-1] == "@troupe_bot what is on this map?"

    tg.user_edits(captioned, "@troupe_bot what is on this old map?")
    tg.user_says(group, bob, "", photo=True)  # no caption: nothing to read, nothing stored
    tg.user_says(group, bob, "@troupe_bot and this one?")
    await _answers(tg, group, 2)
    said = _user_turns(fake_m2her)
    assert said[-2:] == ["@troupe_bot what is on this old map?", "@troupe_bot and this one?"]
