"""StreamingReply and EditCadence against a recording transport (the adapters' end-to-end
tests run the same code against the real platform libraries and stand-ins)."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

import pytest

from bot.platforms.streaming import CadenceBook, EditCadence, RateLimited, StreamingReply
from bot.platforms.text import split_message


@dataclass
class RecordingTransport:
    limit: int = 2000
    ops: list[tuple[float, str, str, str]] = field(default_factory=list)
    messages: dict[str, str] = field(default_factory=dict)
    typing_calls: list[float] = field(default_factory=list)
    fail_next: list[Exception] = field(default_factory=list)
    latency: float = 0.0

    def measure(self, text: str) -> int:
        return len(text)

    async def _maybe_fail(self) -> None:
        await asyncio.sleep(self.latency)
        if self.fail_next:
            raise self.fail_next.pop(0)

    async def send(self, text: str) -> str:
        await self._maybe_fail()
        assert len(text) <= self.limit
        message_id = f"m{len(self.messages) + 1}"
        self.messages[message_id] = text
        self.ops.append((time.monotonic(), "send", message_id, text))
        return message_id

    async def edit(self, message_id: str, text: str) -> None:
        await self._maybe_fail()
        assert len(text) <= self.limit
        assert message_id in self.messages
        self.messages[message_id] = text
        self.ops.append((time.monotonic(), "edit", message_id, text))

    async def delete(self, message_id: str) -> None:
        await self._maybe_fail()
        del self.messages[message_id]
        self.ops.append((time.monotonic(), "delete", message_id, ""))

    async def typing(self) -> None:
        self.typing_calls.append(time.monotonic())

    def visible(self) -> list[str]:
        return list(self.messages.values())


async def stream(reply: StreamingReply, pieces: list[str], gap: float = 0.0) -> None:
    await reply.begin()
    for piece in pieces:
        await reply.delta(piece)
        await asyncio.sleep(gap)


async def test_the_first_text_shows_early_and_the_end_is_exact() -> None:
    transport = RecordingTransport()
    reply = StreamingReply(transport, EditCadence(0.05))
    pieces = [f"word{n} " for n in range(40)]
    started = time.monotonic()
    await stream(reply, pieces, gap=0.01)

    first_send = transport.ops[0]
    assert first_send[1] == "send"
    assert first_send[0] - started < 0.05  # shown right after the first piece arrived
    ids = await reply.finish("".join(pieces).strip())
    assert ids == ["m1"]
    assert transport.visible() == ["".join(pieces).strip()]
    assert len(transport.ops) < len(pieces)  # edits were batched, not one per piece


async def test_operations_keep_to_the_cadence() -> None:
    transport = RecordingTransport()
    reply = StreamingReply(transport, EditCadence(0.1))
    await stream(reply, [f"w{n} " for n in range(50)], gap=0.01)
    await reply.finish("done")
    times = [t for t, *_ in transport.ops]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert gaps
    assert min(gaps) >= 0.095


async def test_a_cadence_is_shared_by_every_reply_in_the_chat() -> None:
    transport = RecordingTransport()
    cadence = EditCadence(0.08)
    first, second = StreamingReply(transport, cadence), StreamingReply(transport, cadence)
    await asyncio.gather(
        stream(first, [f"a{n} " for n in range(20)], gap=0.01),
        stream(second, [f"b{n} " for n in range(20)], gap=0.01),
    )
    await asyncio.gather(first.finish("first"), second.finish("second"))
    times = sorted(t for t, *_ in transport.ops)
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.075
    assert sorted(transport.visible()) == ["first", "second"]


async def test_a_long_reply_continues_in_new_messages() -> None:
    transport = RecordingTransport(limit=200)
    reply = StreamingReply(transport, EditCadence(0.0))
    text = " ".join(f"Sentence number {n} is here." for n in range(60))
    await stream(reply, [text[i : i + 37] for i in range(0, len(text), 37)], gap=0.002)
    ids = await reply.finish(text)
    assert transport.visible() == split_message(text, 200)
    assert ids == list(transport.messages)
    assert len(ids) > 3


async def test_the_final_text_wins_over_what_streamed() -> None:
    transport = RecordingTransport()
    reply = StreamingReply(transport, EditCadence(0.0))
    await stream(reply, ["Hel", "lo wor", "ld"], gap=0.01)
    await reply.finish("Hello, world!")
    assert transport.visible() == ["Hello, world!"]


async def test_a_shorter_final_text_removes_surplus_messages() -> None:
    transport = RecordingTransport(limit=50)
    reply = StreamingReply(transport, EditCadence(0.0))
    await stream(reply, ["x " * 20, "y " * 20, "z " * 20], gap=0.02)
    assert len(transport.messages) >= 2
    await reply.finish("short now")
    assert transport.visible() == ["short now"]


async def test_retract_takes_everything_down_or_replaces_it() -> None:
    transport = RecordingTransport()
    reply = StreamingReply(transport, EditCadence(0.0))
    await stream(reply, ["something ", "bad"], gap=0.01)
    await reply.retract()
    assert transport.visible() == []

    again = StreamingReply(transport, EditCadence(0.0), header="**Aria**\n")
    await stream(again, ["half a ", "reply"], gap=0.01)
    await again.retract("*Aria changes the subject.*")
    assert transport.visible() == ["**Aria**\n*Aria changes the subject.*"]


async def test_a_429_is_waited_out_and_the_end_is_not_lost() -> None:
    transport = RecordingTransport()
    cadence = EditCadence(0.0)
    reply = StreamingReply(transport, cadence)
    await stream(reply, ["one "], gap=0.02)
    transport.fail_next = [RateLimited(0.2), RateLimited(0.1)]
    before = time.monotonic()
    await reply.finish("one two three")
    assert transport.visible() == ["one two three"]
    assert time.monotonic() - before >= 0.3


async def test_too_many_429s_on_the_final_text_give_up_loudly() -> None:
    transport = RecordingTransport()
    reply = StreamingReply(transport, EditCadence(0.0))
    await reply.begin()
    transport.fail_next = [RateLimited(0.0)] * 10
    with pytest.raises(RateLimited):
        await reply.finish("never shown")


async def test_typing_shows_until_the_first_text_only() -> None:
    transport = RecordingTransport()
    reply = StreamingReply(transport, EditCadence(0.0), typing_interval=0.03)
    await reply.begin()
    await asyncio.sleep(0.1)
    assert len(transport.typing_calls) >= 3
    await reply.delta("hi")
    await asyncio.sleep(0.1)
    count = len(transport.typing_calls)
    await asyncio.sleep(0.1)
    assert len(transport.typing_calls) == count
    await reply.finish("hi")
    assert transport.typing_calls[-1] < transport.ops[0][0]


async def test_a_header_starts_the_first_message_only() -> None:
    transport = RecordingTransport(limit=60)
    reply = StreamingReply(transport, EditCadence(0.0), header="[Bram]\n")
    text = "An ale for you. " * 8
    await reply.begin()
    await reply.finish(text.strip())
    visible = transport.visible()
    assert visible[0].startswith("[Bram]\n")
    assert not any(part.startswith("[Bram]") for part in visible[1:])


async def test_a_typing_failure_does_not_fail_the_reply() -> None:
    class BrokenTyping(RecordingTransport):
        async def typing(self) -> None:
            raise ConnectionError("typing endpoint down")

    transport = BrokenTyping()
    reply = StreamingReply(transport, EditCadence(0.0), typing_interval=0.01)
    await reply.begin()
    await asyncio.sleep(0.05)
    await reply.finish("still here")
    assert transport.visible() == ["still here"]


async def test_the_cadence_reports_every_wait() -> None:
    waits: list[float] = []
    book = CadenceBook(0.05, on_wait=waits.append)
    cadence = book.for_chat("c1")
    assert book.for_chat("c1") is cadence
    await cadence.wait_turn()
    await cadence.wait_turn()
    cadence.backoff(0.1)
    await cadence.wait_turn()
    assert len(waits) == 2
    assert waits[0] == pytest.approx(0.05, abs=0.03)
    assert waits[1] == pytest.approx(0.1, abs=0.03)
