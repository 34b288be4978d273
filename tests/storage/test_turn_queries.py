"""What the conversation engine reads and writes per turn and per chat, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.storage import NewMessage, NewModerationEvent, SettingsScope, Storage, WindowMessage
from tests.storage.test_repository import call, replied, said, texts


async def test_a_reply_follows_the_message_it_answered(storage: Storage) -> None:
    conversation = await storage.conversation("t", "c", default_character="aria")
    first = await storage.add_message(said(conversation.id, "m0"))
    # m1 and m2 arrive while the reply to m0 is being written, so it is stored after them.
    await storage.add_message(said(conversation.id, "m1"))
    await storage.add_message(said(conversation.id, "m2"))
    reply = NewMessage(
        conversation.id,
        "assistant",
        "aria",
        "Aria",
        "r0",
        character_id="aria",
        reply_to_id=first.id,
    )
    stored = await storage.add_reply(reply, call(conversation.id))
    assert stored.reply_to_id == first.id

    assert texts(await storage.history_window(conversation.id, 10)) == ["m0", "r0", "m1", "m2"]
    # The window is still the newest by id: with room for three, m0 is what falls out.
    assert texts(await storage.history_window(conversation.id, 3)) == ["r0", "m1", "m2"]


async def test_turn_context_reads_history_persona_and_flags_at_once(storage: Storage) -> None:
    conversation = await storage.conversation("t", "c", default_character="aria")
    await storage.add_message(said(conversation.id, "hello", author="u1"))
    await storage.add_message(replied(conversation.id, "hi"))
    await storage.set_persona("t", "u1", "a lighthouse keeper")
    for _ in range(2):
        await storage.record_moderation_event(
            NewModerationEvent(conversation.id, "t", "c", "u1", "input", 5, "abuse")
        )
    await storage.record_moderation_event(
        NewModerationEvent(conversation.id, "t", "c", "u2", "input", 5, "abuse")
    )
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)

    context = await storage.turn_context(
        conversation.id, limit=10, platform="t", author_id="u1", flags_since=an_hour_ago
    )

    assert texts(context.history) == ["hello", "hi"]
    # The window's messages are the stored ones, cut down to what a prompt needs.
    stored = await storage.history_window(conversation.id, 10)
    fields = WindowMessage._fields
    assert context.history == [WindowMessage(*(getattr(m, f) for f in fields)) for m in stored]
    assert context.persona == "a lighthouse keeper"
    assert context.recent_flags == 2
    later = await storage.turn_context(
        conversation.id,
        limit=1,
        platform="t",
        author_id="u3",
        flags_since=datetime.now(UTC) + timedelta(seconds=1),
    )
    assert (texts(later.history), later.persona, later.recent_flags) == (["hi"], None, 0)


@pytest.mark.parametrize("scope", ["chat", "server"])
async def test_settings_are_stored_per_scope_and_replaced_whole(
    storage: Storage, scope: SettingsScope
) -> None:
    assert await storage.get_settings("discord", scope, "42") == {}
    await storage.set_settings("discord", scope, "42", {"answer_all": True, "n": 3})
    await storage.set_settings("discord", scope, "43", {"answer_all": False})
    assert await storage.get_settings("discord", scope, "42") == {"answer_all": True, "n": 3}
    await storage.set_settings("discord", scope, "42", {"n": 4})
    assert await storage.get_settings("discord", scope, "42") == {"n": 4}
    assert await storage.get_settings("telegram", scope, "42") == {}


async def test_usage_and_server_are_tracked_per_server(storage: Storage) -> None:
    guild_a = await storage.conversation("d", "c1", default_character="aria", server_id="A")
    guild_a2 = await storage.conversation("d", "c2", default_character="aria", server_id="A")
    guild_b = await storage.conversation("d", "c3", default_character="aria", server_id="B")
    assert (guild_a.server_id, guild_b.server_id) == ("A", "B")
    for conversation in (guild_a, guild_a2, guild_b):
        await storage.record_model_call(call(conversation.id, prompt=100, completion=10))

    in_a = await storage.usage_totals(platform="d", server_id="A")
    assert (in_a.calls, in_a.total_tokens) == (2, 220)
    assert (await storage.usage_totals(platform="d", server_id="B")).calls == 1
