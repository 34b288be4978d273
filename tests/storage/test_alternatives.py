"""A character message's alternatives (swipes), on SQLite and on PostgreSQL alike."""

from __future__ import annotations

from bot.storage import Alternatives, Storage
from tests.storage.test_repository import call, replied, said, texts


async def test_alternatives_are_stored_then_shown_and_history_sees_only_the_shown_one(
    storage: Storage,
) -> None:
    conversation = await storage.conversation("test", "room", default_character="aria")
    question = await storage.add_message(said(conversation.id, "hi"))
    reply = await storage.add_message(replied(conversation.id, "one"))
    await storage.set_delivered(reply, ["p1", "p2"])
    reply = await storage.message(conversation.id, reply.id) or reply
    assert await storage.alternatives(reply) == Alternatives(("one",), 0)
    assert await storage.platform_message_ids(reply) == ["p1", "p2"]
    assert await storage.is_newest(reply)

    position = await storage.add_alternative(reply, "two", call(conversation.id))
    assert position == 1
    # Stored, not shown yet: history still holds the first.
    assert texts(await storage.history_window(conversation.id, 10)) == ["hi", "one"]
    assert await storage.alternatives(reply) == Alternatives(("one", "two"), 0)
    assert await storage.show_alternative(reply, 1, ["p1"]) == "two"
    assert texts(await storage.history_window(conversation.id, 10)) == ["hi", "two"]
    shown = await storage.message(conversation.id, reply.id)
    assert shown is not None
    assert await storage.platform_message_ids(shown) == ["p1"]  # the second part went
    assert await storage.alternatives(shown) == Alternatives(("one", "two"), 1)
    totals = await storage.usage_totals(platform="test", author_id="u1")
    assert totals.calls == 1  # the regeneration's call is accounted

    await storage.extend_reply(shown, "two and more", ["p1", "p3"])
    assert await storage.alternatives(shown) == Alternatives(("one", "two and more"), 1)
    assert texts(await storage.history_window(conversation.id, 10)) == ["hi", "two and more"]
    assert (await storage.last_reply(conversation.id)) is not None

    await storage.add_message(said(conversation.id, "later"))
    assert not await storage.is_newest(shown)
    assert question.id < reply.id


async def test_a_greeting_keeps_every_greeting_and_deleting_it_takes_them_along(
    storage: Storage,
) -> None:
    conversation = await storage.conversation("test", "hall", default_character="aria")
    greeting = await storage.add_message(replied(conversation.id, "Hello!"))
    await storage.set_alternatives(greeting.id, ["Welcome.", "Hello!"], 1)
    assert await storage.alternatives(greeting) == Alternatives(("Welcome.", "Hello!"), 1)
    await storage.reset_conversation(conversation.id)
    assert await storage.message(conversation.id, greeting.id) is None
    assert await storage.alternatives(greeting) == Alternatives(("Hello!",), 0)
