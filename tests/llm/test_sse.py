"""The incremental SSE decoder and the reply assembler, fed bytes directly."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.llm.response import ReplyAssembler
from bot.llm.sse import SSEDecoder
from tests.llm.helpers import chunk, sse, summary


def decode(*pieces: bytes) -> list[str]:
    decoder = SSEDecoder()
    events = [event for piece in pieces for event in decoder.feed(piece)]
    return events + decoder.close()


def test_events_are_the_data_of_each_block() -> None:
    assert decode(b'data: {"a":1}\n\ndata: {"b":2}\n\n') == ['{"a":1}', '{"b":2}']


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending_is_accepted(newline: bytes) -> None:
    body = b"data: one" + newline + newline + b"data: two" + newline + newline
    assert decode(body) == ["one", "two"]


def test_crlf_split_between_cr_and_lf_is_one_line_ending() -> None:
    assert decode(b"data: one\r", b"\n\r", b"\ndata: two\r\n\r\n") == ["one", "two"]
    # Taken as two line endings, the split would end the event after "a".
    assert decode(b"data: a\r", b"\ndata: b\r\n\r\n") == ["a\nb"]


def test_comments_blank_lines_and_other_fields_are_ignored() -> None:
    body = b": keep-alive\n\n\n\nevent: message\nid: 7\nretry: 100\ndata: x\n\n:\n\n"
    assert decode(body) == ["x"]


def test_data_without_space_and_multi_line_data() -> None:
    assert decode(b"data:x\n\ndata: a\ndata: b\n\n") == ["x", "a\nb"]


def test_utf8_character_split_across_reads() -> None:
    body = sse("Grüße 🌊 海")
    cut = body.index("🌊".encode()) + 2
    assert decode(body[:cut], body[cut:]) == ["Grüße 🌊 海"]


def test_last_event_without_blank_line_is_flushed_on_close() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: tail") == []
    assert decoder.close() == ["tail"]


def test_nothing_is_dispatched_before_the_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\n") == []
    assert decoder.feed(b"\n") == ["x"]


# -- property: splitting a valid stream anywhere never changes the outcome -----------

TEXT = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12)


def _reply_stream(pieces: list[str], crlf: bool, done: bool, with_summary: bool) -> bytes:
    events: list[dict[str, object] | str] = [chunk(p) for p in pieces[:-1]]
    events.append(chunk(pieces[-1], finish_reason="stop"))
    if with_summary:
        events.append(summary("".join(pieces)))
    if done:
        events.append("[DONE]")
    return b": comment\n\n" + sse(*events, crlf=crlf)


def assemble(body: bytes, cuts: list[int]) -> tuple[str, str]:
    """Feed ``body`` split at ``cuts``; return (joined deltas, final text)."""
    decoder = SSEDecoder()
    assembler = ReplyAssembler(trace_id=None, streaming=True)
    deltas = []
    bounds = [0, *sorted(set(cuts)), len(body)]
    payloads = []
    for start, end in itertools.pairwise(bounds):
        payloads += decoder.feed(body[start:end])
    payloads += decoder.close()
    for payload in payloads:
        if payload == "[DONE]":
            break
        deltas.append(assembler.add(json.loads(payload)))
    return "".join(deltas), assembler.result().text


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(TEXT, min_size=1, max_size=6),
    crlf=st.booleans(),
    done=st.booleans(),
    with_summary=st.booleans(),
    data=st.data(),
)
def test_random_splits_always_give_the_same_text(
    pieces: list[str], crlf: bool, done: bool, with_summary: bool, data: st.DataObject
) -> None:
    body = _reply_stream(pieces, crlf, done, with_summary)
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=20))
    deltas, text = assemble(body, cuts)
    assert deltas == "".join(pieces)
    assert text == "".join(pieces)


def test_every_single_byte_split_gives_the_same_text() -> None:
    body = _reply_stream(["Grüße, ", "🌊 sailor", " 海"], crlf=True, done=True, with_summary=True)
    for cut in range(len(body) + 1):
        assert assemble(body, [cut]) == ("Grüße, 🌊 sailor 海", "Grüße, 🌊 sailor 海")


def test_assembler_tolerates_odd_values() -> None:
    assembler = ReplyAssembler(trace_id=None, streaming=False)
    body = json.loads(
        '{"id": 7, "choices": [{"index": 1, "message": {"content": "other choice"}},'
        ' {"finish_reason": "stop", "message": {"content": "hi", "name": null}}],'
        ' "usage": {"total_tokens": "12", "prompt_tokens": Infinity, "completion_tokens": []},'
        ' "input_sensitive_type": "x", "output_sensitive_type": 42,'
        ' "base_resp": {"status_code": "0", "status_msg": null}}'
    )
    assert assembler.add(body) == ""
    result = assembler.result()
    assert (result.text, result.response_id, result.name) == ("hi", None, None)
    assert (result.usage.total_tokens, result.usage.prompt_tokens) == (12, 0)
    assert result.flags.output_sensitive_type == 42  # unknown codes pass through raw
    assert result.flags.input_sensitive_type == 0
    assert assembler.add([1, 2]) == ""  # not an object: ignored
