"""The streaming pump (StreamingReply) and write budgets against a recording transport.

The adapters' end-to-end tests run the same code against the real platform libraries and
stand-ins. Pacing tests here finish a reply the way it happens live: the stream has gone
quiet, so the pump is inside its wait when the reply ends.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

import pytest

from bot.platforms.streaming import (
    BudgetBook,
    Pace,
    PreviewUnavailable,
    Rate,
    StreamingReply,
    WriteBudget,
    WriteRateLimited,
)
from bot.platforms.text import split_message


@dataclass
class RecordingTransport:
    limit: int = 2000
    ops: list[tuple[float, str, str, str]] = field(default_factory=list)
    messages: dict[str, str] = field(default_factory=dict)
    typing_calls: list[float] = field(default_factory=list)
    typing_done: list[float] = field(default_factory=list)
    typing_latency: float = 0.0
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
        message_id = f"m{len(self.ops) + 1}"
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
        await asyncio.sleep(self.typing_latency)
        self.typing_done.append(time.monotonic())

    def visible(self) -> list[str]:
        return list(self.messages.values())


@dataclass
class RecordingPreview:
    shown: list[str] = field(default_factory=list)
    unavailable: bool = False
    cleared: bool = False

    async def show(self, text: str) -> None:
        if self.unavailable:
            raise PreviewUnavailable("no drafts here")
        self.shown.append(text)

    async def clear(self) -> None:
        self.cleared = True


def budget(*rates: Rate, gap: float = 0.0, reserve: int = 1) -> WriteBudget:
    return WriteBudget(Pace(rates or (Rate(100, 1.0),), preview_gap=gap, reserve=reserve))


def most_in_any_window(times: list[float], window: float) -> int:
    return max((sum(1 for t in times if start <= t < start + window) for start in times), default=0)


async def stream(reply: StreamingReply, pieces: list[str], gap: float = 0.0) -> None:
    await reply.begin()
    for piece in pieces:
        await reply.delta(piece)
        await asyncio.sleep(gap)


# -- what is shown ----------------------------------------------------------------------


async def test_the_first_text_shows_early_and_the_end_is_exact() -> None:
    transport = RecordingTransport()
    reply = StreamingReply(transport, budget(gap=0.05))
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


async def test_a_long_reply_continues_in_new_messages() -> None:
    transport = RecordingTransport(limit=200)
    reply = StreamingReply(transport, budget())
    text = " ".join(f"Sentence number {n} is here." for n in range(60))
    await stream(reply, [text[i : i + 37] for i in range(0, len(text), 37)], gap=0.002)
    ids = await reply.finish(text)
    assert transport.visible() == split_message(text, 200)
    assert ids == list(transport.messages)
    assert len(ids) > 3


async def test_the_final_text_wins_over_what_streamed() -> None:
    transport = RecordingTransport()
    reply = StreamingReply(transport, budget())
    await stream(reply, ["Hel", "lo wor", "ld"], gap=0.01)
    await reply.finish("Hello, world!")
    assert transport.visible() == ["Hello, world!"]


async def test_a_shorter_final_text_removes_surplus_messages() -> None:
    transport = RecordingTransport(limit=50)
    reply = StreamingReply(transport, budget())
    await stream(reply, ["x " * 20, "y " * 20, "z " * 20], gap=0.02)
    assert len(transport.messages) >= 2
    await reply.finish("short now")
    assert transport.visible() == ["short now"]


async def test_a_reply_complete_before_the_first_write_is_posted_in_its_final_parts() -> None:
    transport = RecordingTransport()
    reply = StreamingReply(transport, budget())
    text = "An instant reply. " * 170  # about 3,000 characters, all at once
    await reply.begin()
    await reply.delta(text)
    await reply.finish(text.strip())
    assert [op for _, op, _, _ in transport.ops] == ["send", "send"]
    assert transport.visible() == split_message(text.strip(), 2000)


async def test_a_reply_arriving_in_quick_pieces_is_still_posted_in_its_final_parts() -> None:
    transport = RecordingTransport()
    reply = StreamingReply(transport, budget())
    text = "An instant reply. " * 170
    await reply.begin()
    for start in range(0, len(text), 300):  # read from the socket in a few quick pieces
        await reply.delta(text[start : start + 300])
        await asyncio.sleep(0.001)
    await reply.finish(text.strip())
    assert [op for _, op, _, _ in transport.ops] == ["send", "send"]


async def test_retract_takes_everything_down_or_replaces_it() -> None:
    transport = RecordingTransport()
    reply = StreamingReply(transport, budget())
    await stream(reply, ["something ", "bad"], gap=0.01)
    await reply.retract()
    assert transport.visible() == []

    again = StreamingReply(transport, budget(), header="**Aria**\n")
    await stream(again, ["half a ", "reply"], gap=0.01)
    await again.retract("*Aria changes the subject.*")
    assert transport.visible() == ["**Aria**\n*Aria changes the subject.*"]


async def test_a_header_starts_the_first_message_only() -> None:
    transport = RecordingTransport(limit=60)
    reply = StreamingReply(transport, budget(), header="[Bram]\n")
    text = "An ale for you. " * 8
    await reply.begin()
    await reply.finish(text.strip())
    visible = transport.visible()
    assert visible[0].startswith("[Bram]\n")
    assert not any(part.startswith("[Bram]") for part in visible[1:])


# -- pacing -------------------------------------------------------------------------------


async def test_the_final_text_goes_out_at_once_while_the_pump_waits_for_its_next_edit() -> None:
    transport = RecordingTransport(latency=0.005)
    reply = StreamingReply(transport, budget(Rate(5, 5.0), gap=1.0))
    await stream(reply, ["The model starts"], gap=0.05)
    assert [op for _, op, _, _ in transport.ops] == ["send"]
    await reply.delta(" and goes on")
    # Live timing: the stream is quiet now and the pump waits out its gap (until 1 s).
    await asyncio.sleep(0.2)
    assert len(transport.ops) == 1
    ended = time.monotonic()
    await reply.finish("The model starts and goes on, then ends.")
    assert transport.visible() == ["The model starts and goes on, then ends."]
    assert transport.ops[-1][0] - ended < 0.05


async def test_previews_keep_their_gap_and_leave_room_for_the_final_text() -> None:
    transport = RecordingTransport()
    shared = budget(Rate(4, 1.0), gap=0.05)
    reply = StreamingReply(transport, shared)
    await stream(reply, [f"w{n} " for n in range(80)], gap=0.01)
    previews = [t for t, *_ in transport.ops]
    assert min(b - a for a, b in itertools.pairwise(previews)) >= 0.045
    # Previews use at most 3 of the 4 writes a second: one stays free for the end.
    assert most_in_any_window(previews, 1.0) <= 3
    ended = time.monotonic()
    await reply.finish("done")
    assert transport.ops[-1][0] - ended < 0.05
    assert most_in_any_window([t for t, *_ in transport.ops], 1.0) <= 4


async def test_every_reply_in_a_chat_draws_on_one_budget() -> None:
    transport = RecordingTransport()
    shared = budget(Rate(3, 0.5), gap=0.0)
    first, second = StreamingReply(transport, shared), StreamingReply(transport, shared)
    await asyncio.gather(
        stream(first, [f"a{n} " for n in range(30)], gap=0.01),
        stream(second, [f"b{n} " for n in range(30)], gap=0.01),
    )
    await asyncio.gather(first.finish("first"), second.finish("second"))
    assert most_in_any_window([t for t, *_ in transport.ops], 0.5) <= 3
    assert sorted(transport.visible()) == ["first", "second"]


async def test_a_chat_at_its_limit_makes_the_final_text_wait_only_until_room_returns() -> None:
    transport = RecordingTransport()
    shared = budget(Rate(2, 0.3), gap=0.0)
    assert await shared.take()
    assert await shared.take()
    reply = StreamingReply(transport, shared)
    await reply.begin()
    started = time.monotonic()
    await reply.finish("when the window allows")
    waited = transport.ops[0][0] - started
    assert 0.25 <= waited < 0.4
    assert shared.waited >= 0.25


async def test_a_429_is_waited_out_and_the_end_is_not_lost() -> None:
    transport = RecordingTransport()
    reply = StreamingReply(transport, budget())
    await stream(reply, ["one "], gap=0.02)
    transport.fail_next = [WriteRateLimited(0.2), WriteRateLimited(0.1)]
    before = time.monotonic()
    await reply.finish("one two three")
    assert transport.visible() == ["one two three"]
    assert time.monotonic() - before >= 0.3


async def test_too_many_429s_on_the_final_text_give_up_loudly() -> None:
    transport = RecordingTransport()
    reply = StreamingReply(transport, budget())
    await reply.begin()
    transport.fail_next = [WriteRateLimited(0.0)] * 10
    with pytest.raises(WriteRateLimited):
        await reply.finish("never shown")


async def test_a_budget_reports_every_wait() -> None:
    waits: list[float] = []
    book: BudgetBook[str] = BudgetBook(Pace((Rate(1, 0.05),), preview_gap=0.0, reserve=0))
    book.on_wait = waits.append
    shared = book.for_chat("c1")
    assert book.for_chat("c1") is shared
    await shared.take()
    await shared.take()
    shared.backoff(0.1)
    await shared.take()
    assert len(waits) == 2
    assert waits[0] == pytest.approx(0.05, abs=0.03)
    assert waits[1] == pytest.approx(0.1, abs=0.03)


def test_a_pace_must_leave_previews_some_room() -> None:
    with pytest.raises(ValueError, match="reserve"):
        Pace((Rate(1, 1.0),), preview_gap=1.0, reserve=1)


def test_budgets_of_quiet_chats_are_forgotten() -> None:
    now = [0.0]
    book: BudgetBook[int] = BudgetBook(Pace((Rate(5, 5.0),), preview_gap=1.0), clock=lambda: now[0])
    for chat in range(1000):
        book.for_chat(chat).backoff(1.0)  # every chat still limited for a second
    assert len(book) == 1000
    now[0] = 10.0
    for chat in range(1000, 3000):
        book.for_chat(chat)
    # Only the chats made since the last sweep are still kept.
    assert len(book) < 1100
    busy = book.for_chat(5000)
    busy.backoff(60.0)
    for chat in range(6000, 9000):
        book.for_chat(chat)
    assert book.for_chat(5000) is busy  # a budget that still limits is kept


# -- typing and previews ------------------------------------------------------------------


async def test_typing_shows_until_the_first_text_only() -> None:
    transport = RecordingTransport()
    reply = StreamingReply(transport, budget(), typing_interval=0.03)
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


async def test_a_typing_request_in_flight_is_never_cut_off() -> None:
    transport = RecordingTransport(typing_latency=0.1)
    reply = StreamingReply(transport, budget(), typing_interval=10.0)
    await reply.begin()
    await asyncio.sleep(0.02)  # the typing request is on its way
    await reply.finish("done")
    # Cancelling it could leave the HTTP client's connection half-used; it completes.
    assert len(transport.typing_done) == len(transport.typing_calls) == 1
    assert transport.typing_done[0] <= transport.ops[0][0]


async def test_a_typing_failure_does_not_fail_the_reply() -> None:
    class BrokenTyping(RecordingTransport):
        async def typing(self) -> None:
            raise ConnectionError("typing endpoint down")

    transport = BrokenTyping()
    reply = StreamingReply(transport, budget(), typing_interval=0.01)
    await reply.begin()
    await asyncio.sleep(0.05)
    await reply.finish("still here")
    assert transport.visible() == ["still here"]


async def test_a_preview_shows_the_reply_until_it_is_posted_whole() -> None:
    transport, preview = RecordingTransport(), RecordingPreview()
    reply = StreamingReply(transport, budget(gap=0.02), header="H: ", preview=preview)
    await stream(reply, [f"w{n} " for n in range(20)], gap=0.01)
    assert transport.ops == []  # nothing posted while it streams
    assert preview.shown[0].startswith("H: w0 ")
    assert preview.shown[-1].startswith("H: w0 w1")
    await reply.finish("the whole reply")
    assert [op for _, op, _, _ in transport.ops] == ["send"]
    assert transport.visible() == ["H: the whole reply"]


async def test_previews_may_draw_on_their_own_budget() -> None:
    transport, preview = RecordingTransport(), RecordingPreview()
    messages = budget(Rate(2, 10.0), reserve=1)
    drafts = budget(Rate(50, 1.0), gap=0.01)
    reply = StreamingReply(transport, messages, preview=preview, preview_budget=drafts)
    await stream(reply, [f"w{n} " for n in range(20)], gap=0.01)
    # Previews used none of the chat's two messages: the reply goes out at once.
    assert len(preview.shown) > 5
    ended = time.monotonic()
    await reply.finish("the whole reply")
    assert transport.ops[0][0] - ended < 0.05


async def test_without_previews_the_reply_switches_to_messages_mid_stream() -> None:
    transport, preview = RecordingTransport(), RecordingPreview(unavailable=True)
    reply = StreamingReply(transport, budget(), preview=preview)
    await stream(reply, ["first ", "words"], gap=0.02)
    assert transport.visible() == ["first words"]
    await reply.finish("first words, then more")
    assert transport.visible() == ["first words, then more"]


async def test_a_withdrawn_reply_clears_its_preview() -> None:
    transport, preview = RecordingTransport(), RecordingPreview()
    reply = StreamingReply(transport, budget(), preview=preview)
    await stream(reply, ["flagged text"], gap=0.1)
    assert preview.shown == ["flagged text"]
    await reply.retract()
    assert preview.cleared
    assert transport.visible() == []
