"""Turns owed: a conversation whose wanted messages are ahead of what was answered."""

from __future__ import annotations

from datetime import timedelta

from bot.storage import NewMessage, Storage

LEASE = timedelta(seconds=30)


async def _say(
    storage: Storage, conversation_id: int, text: str, role: str = "user", *, owed: bool = False
) -> int:
    stored = await storage.add_message(
        NewMessage(
            conversation_id=conversation_id,
            role="user" if role == "user" else "assistant",
            author_id="u1" if role == "user" else "character:aria",
            author_name="Alice" if role == "user" else "Aria",
            text=text,
            platform_message_id=f"p-{text}",
        ),
        owed=owed,
    )
    return stored.id


async def test_a_wanted_message_is_owed_until_answered(storage: Storage) -> None:
    conversation = await storage.conversation("t", "c", default_character="aria", server_id="guild")
    first = await _say(storage, conversation.id, "first")
    assert await storage.owed_turns("t") == []  # stored, but nobody wanted a turn
    second = await _say(storage, conversation.id, "second", owed=True)
    [owed] = await storage.owed_turns("t")
    assert owed.conversation == conversation
    assert owed.wanted_through == second
    assert owed.message is not None
    assert (owed.message.id, owed.message.text, owed.message.platform_message_id) == (
        second,
        "second",
        "p-second",
    )
    assert await storage.owed_turns("other platform") == []

    await storage.mark_answered(conversation.id, second)
    assert await storage.owed_turns("t") == []
    assert await storage.answered_through(conversation.id) == second
    await storage.mark_answered(conversation.id, first)  # never goes back
    assert await storage.answered_through(conversation.id) == second


async def test_the_owed_message_is_the_newest_human_one_after_the_answered(
    storage: Storage,
) -> None:
    conversation = await storage.conversation("t", "c", default_character="aria")
    asked = await _say(storage, conversation.id, "asked", owed=True)
    await storage.mark_answered(conversation.id, asked)
    later = await _say(storage, conversation.id, "later", owed=True)
    await _say(storage, conversation.id, "a character line", role="assistant")
    [owed] = await storage.owed_turns("t")
    assert owed.message is not None
    assert owed.message.id == later

    await storage.delete_message(conversation.id, "p-later")
    [owed] = await storage.owed_turns("t")
    assert owed.message is None  # deleted: nothing left to answer


async def test_a_live_claim_hides_the_owed_turn_and_an_expired_one_does_not(
    storage: Storage,
) -> None:
    conversation = await storage.conversation("t", "c", default_character="aria")
    said = await _say(storage, conversation.id, "hello", owed=True)
    assert await storage.claim_turn(conversation.id, "alive", LEASE) == 0
    assert await storage.owed_turns("t") == []  # someone is answering it right now
    await storage.release_turn(conversation.id, "alive", answered_through=0)
    assert len(await storage.owed_turns("t")) == 1

    assert await storage.claim_turn(conversation.id, "dead", timedelta(seconds=-1)) == 0
    assert len(await storage.owed_turns("t")) == 1  # its owner died: owed again
    # A claim keeps what was wanted; its release answers it.
    assert await storage.claim_turn(conversation.id, "next", LEASE) == 0
    await storage.release_turn(conversation.id, "next", answered_through=said)
    assert await storage.owed_turns("t") == []


async def test_a_message_stored_owed_is_owed_its_turn(storage: Storage) -> None:
    conversation = await storage.conversation("t", "c", default_character="aria")
    message = NewMessage(
        conversation_id=conversation.id,
        role="user",
        author_id="u1",
        author_name="Alice",
        text="answer me",
    )
    await storage.add_message(message)
    assert await storage.owed_turns("t") == []
    stored = await storage.add_message(message, owed=True)
    [owed] = await storage.owed_turns("t")
    assert (owed.wanted_through, owed.message) == (stored.id, stored)
