"""Telegram messages → the engine's Incoming: the facts the trigger policy relies on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from telegram import Chat, ForumTopicCreated, Message, MessageEntity, User

from bot.conversation.incoming import ConversationKey
from bot.platforms.telegram.handlers import chat_target, conversation_key, to_incoming

BOT = User(42, "Troupe", is_bot=True, username="troupe_bot")
ALICE = User(1001, "Alice", is_bot=False, last_name="Liddell", username="alice")
BOB = User(1002, "Bob", is_bot=False, username="bob")
NOW = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)
PRIVATE = Chat(1001, Chat.PRIVATE, first_name="Alice")
GROUP = Chat(-100123, Chat.SUPERGROUP, title="Tavern")
FORUM = Chat(-100777, Chat.SUPERGROUP, title="Forum", is_forum=True)


def _message(
    text: str,
    chat: Chat = GROUP,
    *,
    author: User = ALICE,
    entities: list[MessageEntity] | None = None,
    **extra: object,
) -> Message:
    return Message(
        7,
        NOW,
        chat,
        from_user=author,
        text=text,
        entities=entities or [],
        **extra,  # type: ignore[arg-type]
    )


def test_a_private_message_is_direct_with_no_server() -> None:
    incoming = to_incoming(_message("hello", PRIVATE), BOT)
    assert incoming.key == ConversationKey("telegram", "1001")
    assert incoming.is_direct
    assert incoming.server_id is None
    assert incoming.author_name == "Alice Liddell"
    assert incoming.platform_message_id == "7"
    assert chat_target(_message("hello", PRIVATE)).reply_to is None  # no quoting in DMs


def test_a_group_message_names_its_group_and_is_quoted() -> None:
    incoming = to_incoming(_message("hello"), BOT)
    assert not incoming.is_direct
    assert (incoming.server_id, incoming.channel_name) == ("-100123", "Tavern")
    assert chat_target(_message("hello")).reply_to == 7


@pytest.mark.parametrize(
    ("text", "entities", "me", "others"),
    [
        ("hi @troupe_bot", [MessageEntity(MessageEntity.MENTION, 3, 11)], True, False),
        ("hi @TROUPE_BOT", [MessageEntity(MessageEntity.MENTION, 3, 11)], True, False),
        ("hi @bob", [MessageEntity(MessageEntity.MENTION, 3, 4)], False, True),
        ("hi Troupe", [MessageEntity(MessageEntity.TEXT_MENTION, 3, 6, user=BOT)], True, False),
        ("hi Bob", [MessageEntity(MessageEntity.TEXT_MENTION, 3, 3, user=BOB)], False, True),
        ("😀 @troupe_bot", [MessageEntity(MessageEntity.MENTION, 3, 11)], True, False),  # UTF-16
        ("mail me@troupe_bot.org", [], False, False),
    ],
)
def test_mentions_of_the_bot_and_of_others(
    text: str, entities: list[MessageEntity], me: bool, others: bool
) -> None:
    incoming = to_incoming(_message(text, entities=entities), BOT)
    assert (incoming.mentions_bot, incoming.mentions_others) == (me, others)


def test_a_reply_to_the_bot_and_to_someone_else() -> None:
    ours = _message("I am Aria", author=BOT)
    theirs = _message("I am Bob", author=BOB)
    to_us = to_incoming(_message("yes", reply_to_message=ours), BOT)
    assert to_us.replies_to_bot
    assert to_us.reply_to_message_id == "7"
    assert not to_incoming(_message("yes", reply_to_message=theirs), BOT).replies_to_bot


def test_a_forum_topic_is_a_conversation_and_its_root_is_not_a_reply() -> None:
    root = Message(
        55, NOW, FORUM, from_user=ALICE, forum_topic_created=ForumTopicCreated("Lore", 0)
    )
    message = _message(
        "in the topic",
        FORUM,
        message_thread_id=55,
        is_topic_message=True,
        reply_to_message=root,
    )
    incoming = to_incoming(message, BOT)
    assert incoming.key == ConversationKey("telegram", "-100777", "55")
    assert not incoming.replies_to_bot
    assert incoming.reply_to_message_id is None
    assert chat_target(message).thread_id == 55
    # A reply thread in a group without topics is not a conversation of its own.
    plain = _message("x", GROUP, message_thread_id=9)
    assert conversation_key(plain) == ConversationKey("telegram", "-100123")


def test_a_bot_author_is_flagged() -> None:
    other_bot = User(77, "Helper", is_bot=True, username="helper_bot")
    assert to_incoming(_message("beep", author=other_bot), BOT).author_is_bot


def test_only_messages_with_text_and_an_author_reach_the_engine() -> None:
    with pytest.raises(ValueError, match="only messages with text"):
        to_incoming(Message(1, NOW, GROUP, from_user=ALICE), BOT)


def test_a_caption_is_the_text_and_its_mentions_count() -> None:
    mention = MessageEntity(MessageEntity.MENTION, 0, 11)
    photo = Message(
        8, NOW, GROUP, from_user=ALICE, caption="@troupe_bot look", caption_entities=[mention]
    )
    incoming = to_incoming(photo, BOT)
    assert incoming.text == "@troupe_bot look"
    assert (incoming.mentions_bot, incoming.mentions_others) == (True, False)
