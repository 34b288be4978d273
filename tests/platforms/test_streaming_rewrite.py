"""The pump rewriting a reply already shown (swipes): into its messages, and back on failure."""

from __future__ import annotations

import asyncio

from bot.platforms.streaming import Pace, Rate, StreamingReply, WriteBudget
from bot.platforms.text import split_message
from tests.platforms.test_streaming import RecordingTransport


def _posted(transport: RecordingTransport, *texts: str) -> list[str]:
    """Post ``texts`` as if an earlier reply had; their ids."""
    ids = []
    for number, text in enumerate(texts, start=1):
        transport.messages[f"old{number}"] = text
        ids.append(f"old{number}")
    return ids


def _reply(transport: RecordingTransport) -> StreamingReply:
    return StreamingReply(transport, WriteBudget(Pace((Rate(100, 1.0),), preview_gap=0.0)))


async def test_a_regeneration_edits_the_old_messages_and_deletes_those_not_needed() -> None:
    transport = RecordingTransport(limit=10)
    ids = _posted(transport, "old part", "two")
    reply = _reply(transport)
    reply.take_over(ids, "old part two", keep=False)
    await reply.begin()
    await reply.delta("New.")
    assert await reply.finish("New.") == ["old1"]
    assert transport.visible() == ["New."]
    assert all(op != "send" for _, op, _, _ in transport.ops)


async def test_a_longer_regeneration_reuses_the_old_messages_before_posting_new_ones() -> None:
    transport = RecordingTransport(limit=10)
    ids = _posted(transport, "short")
    reply = _reply(transport)
    reply.take_over(ids, "short", keep=False)
    await reply.begin()
    ids = await reply.finish("one two three four")
    assert ids[0] == "old1"
    assert " ".join(transport.messages[i] for i in ids) == "one two three four"


async def test_a_continuation_grows_the_last_message_and_a_failure_puts_the_old_text_back() -> None:
    transport = RecordingTransport(limit=20)
    ids = _posted(transport, "It was late.")
    reply = _reply(transport)
    reply.take_over(ids, "It was late.", keep=True)
    await reply.begin()
    await reply.delta(" The lamp")
    ids = await reply.finish("It was late. The lamp hummed.")
    assert ids[0] == "old1"
    shown = [transport.messages[i] for i in ids]
    assert shown == split_message("It was late. The lamp hummed.", 20)

    failed = _reply(transport)
    failed.take_over(ids, "It was late. The lamp hummed.", keep=False)
    await failed.begin()
    await failed.delta("Something else entirely, long enough to split")
    # The model's text is shown while it streams: the old messages change, more are posted.
    for _ in range(500):
        if transport.messages["old1"] != shown[0]:
            break
        await asyncio.sleep(0.01)
    assert transport.messages["old1"] != shown[0]
    await failed.retract()
    assert transport.visible() == shown
