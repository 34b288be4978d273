"""The pump rewriting a reply already shown (swipes): into its messages, and back on failure."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from bot.platforms.streaming import Buttons, Pace, Rate, StreamingReply, WriteBudget
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


async def _regenerating(transport: RecordingTransport, *old: str) -> StreamingReply:
    """A reply begun over an earlier one posted as ``old``, to replace it."""
    reply = _reply(transport)
    reply.take_over(_posted(transport, *old), " ".join(old), keep=False)
    await reply.begin()
    return reply


async def test_a_regeneration_edits_the_old_messages_and_deletes_those_not_needed() -> None:
    transport = RecordingTransport(limit=10)
    reply = await _regenerating(transport, "old part", "two")
    await reply.delta("New.")
    assert await reply.finish("New.") == ["old1"]
    assert transport.visible() == ["New."]
    assert all(op != "send" for _, op, _, _ in transport.ops)


async def test_a_longer_regeneration_reuses_the_old_messages_before_posting_new_ones() -> None:
    transport = RecordingTransport(limit=10)
    reply = await _regenerating(transport, "short")
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


@dataclass
class MarkedTransport(RecordingTransport):
    """A transport whose writes can carry buttons: records which did, and with what."""

    marked: dict[str, str] = field(default_factory=dict)

    async def send_with(self, text: str, markup: str) -> str:
        message_id = await self.send(text)
        self._mark(message_id, markup)
        return message_id

    async def edit_with(self, message_id: str, text: str, markup: str) -> None:
        await self.edit(message_id, text)
        self._mark(message_id, markup)

    async def set_markup(self, message_id: str, markup: str) -> None:
        self.ops.append((time.monotonic(), "markup", message_id, markup))
        self._mark(message_id, markup)

    def _mark(self, message_id: str, markup: str) -> None:
        self.marked[message_id] = markup
        at, op, _, text = self.ops[-1]
        self.ops[-1] = (at, f"{op}+buttons", message_id, text)


async def test_the_buttons_ride_on_the_write_of_the_last_part_of_a_rewrite() -> None:
    transport = MarkedTransport(limit=10)
    reply = await _regenerating(transport, "short")
    ids = await reply.finish("one two three four", Buttons(transport, "swipe"))
    # The old message takes the first part; the new last part is posted with the buttons.
    parts = split_message("one two three four", 10)
    assert len(parts) > 2
    ops = [op for _, op, _, _ in transport.ops]
    assert ops == ["edit"] + ["send"] * (len(parts) - 2) + ["send+buttons"]
    assert transport.marked == {ids[-1]: "swipe"}


async def test_a_shorter_rewrite_puts_the_buttons_on_its_last_part_then_deletes_the_rest() -> None:
    transport = MarkedTransport(limit=10)
    reply = await _regenerating(transport, "one two", "three")
    assert await reply.finish("New.", Buttons(transport, "swipe")) == ["old1"]
    assert [op for _, op, _, _ in transport.ops] == ["edit+buttons", "delete"]
    assert transport.visible() == ["New."]


async def test_a_last_part_already_final_gets_the_buttons_alone() -> None:
    transport = MarkedTransport(limit=100)
    reply = _reply(transport)
    await reply.begin()
    await reply.delta("Said in one breath.")
    for _ in range(500):
        if transport.visible() == ["Said in one breath."]:
            break
        await asyncio.sleep(0.01)
    ids = await reply.finish("Said in one breath.", Buttons(transport, "swipe"))
    assert [op for _, op, _, _ in transport.ops] == ["send", "markup+buttons"]
    assert transport.marked == {ids[0]: "swipe"}
