"""Stream tolerances over real sockets, with exact bytes from a raw loopback server."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.llm import errors
from bot.llm.client import M2HerClient, RetryPolicy
from bot.llm.types import Usage
from tests.conftest import FAST_RETRY, FAST_TIMEOUTS, TEST_API_KEY
from tests.llm.helpers import (
    RawResponse,
    RawServer,
    chat_request,
    chunk,
    sse,
    stream_all,
    stream_until_error,
    summary,
)

STANDARD = sse(
    chunk("Get in here"),
    chunk(" before you float away."),
    chunk(" Kettle's already on.", finish_reason="stop"),
    summary("Get in here before you float away. Kettle's already on."),
)
REPLY = "Get in here before you float away. Kettle's already on."


async def test_the_documented_stream(raw: RawServer, raw_client: M2HerClient) -> None:
    raw.add(RawResponse([STANDARD], headers={"Trace-Id": "t" * 32}))
    deltas, result = await stream_all(raw_client, chat_request())
    assert deltas == ["Get in here", " before you float away.", " Kettle's already on."]
    assert result.text == REPLY
    assert result.finish_reason == "stop"
    assert result.usage == Usage(total_tokens=42)
    assert result.trace_id == "t" * 32
    assert result.response_id == "a" * 32


async def test_events_split_at_every_byte_even_inside_utf8(
    raw: RawServer, raw_client: M2HerClient
) -> None:
    body = sse(chunk("Grüße, 🌊 "), chunk("海の灯台", finish_reason="stop"))
    raw.add(RawResponse([body[i : i + 1] for i in range(len(body))], gap=0))
    _, result = await stream_all(raw_client, chat_request())
    assert result.text == "Grüße, 🌊 海の灯台"


@given(cuts=st.lists(st.integers(0, len(STANDARD)), min_size=1, max_size=12))
@settings(max_examples=15, deadline=None)
def test_random_splits_over_the_socket_give_the_same_text(cuts: list[int]) -> None:
    bounds = [0, *sorted(set(cuts)), len(STANDARD)]
    pieces = [STANDARD[a:b] for a, b in itertools.pairwise(bounds) if b > a]

    async def run() -> str:
        server = RawServer()
        await server.start()
        try:
            server.add(RawResponse(pieces, gap=0.001))
            async with M2HerClient(TEST_API_KEY, base_url=server.base_url) as client:
                _, result = await stream_all(client, chat_request())
                return result.text
        finally:
            await server.close()

    assert asyncio.run(run()) == REPLY


async def test_crlf_comments_and_blank_lines(raw: RawServer, raw_client: M2HerClient) -> None:
    body = b": ping\r\n\r\n\r\n" + sse(chunk("a"), crlf=True) + b":\r\n\r\n"
    body += sse(chunk("b", finish_reason="stop"), summary("ab"), crlf=True)
    raw.add(RawResponse([body]))
    deltas, result = await stream_all(raw_client, chat_request())
    assert (deltas, result.text) == (["a", "b"], "ab")


@pytest.mark.parametrize("done", [False, True])
@pytest.mark.parametrize("with_summary", [False, True])
async def test_done_and_summary_present_or_absent(
    raw: RawServer, raw_client: M2HerClient, done: bool, with_summary: bool
) -> None:
    events: list[dict[str, object] | str] = [chunk("one "), chunk("two", finish_reason="length")]
    if with_summary:
        events.append(summary("one two", finish_reason="length"))
    if done:
        events.append("[DONE]")
    raw.add(RawResponse([sse(*events)]))
    deltas, result = await stream_all(raw_client, chat_request())
    assert "".join(deltas) == result.text == "one two"
    assert result.finish_reason == "length"


async def test_anything_after_done_is_ignored(raw: RawServer, raw_client: M2HerClient) -> None:
    raw.add(RawResponse([sse(chunk("x", finish_reason="stop"), "[DONE]", chunk("junk"))]))
    _, result = await stream_all(raw_client, chat_request())
    assert result.text == "x"


async def test_usage_null_or_zero_in_chunks_keeps_the_last_non_zero(
    raw: RawServer, raw_client: M2HerClient
) -> None:
    full = {"prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23, "total_characters": 0}
    body = sse(
        chunk("a", usage=None),
        chunk("b", usage={"total_tokens": 0, "total_characters": 0}),
        chunk("c", finish_reason="stop", usage=full),
        {**summary("abc"), "usage": {"total_tokens": 0}},
    )
    raw.add(RawResponse([body]))
    _, result = await stream_all(raw_client, chat_request())
    assert result.usage == Usage(prompt_tokens=20, completion_tokens=3, total_tokens=23)


async def test_unknown_fields_and_odd_delta_roles(raw: RawServer, raw_client: M2HerClient) -> None:
    odd = chunk("a", service_tier="x", system_fingerprint="y")
    odd["choices"][0]["delta"]["role"] = ""
    missing = chunk("b", finish_reason="stop")
    del missing["choices"][0]["delta"]["role"]
    missing["choices"][0]["delta"]["reasoning_content"] = "hmm"
    body = sse(odd, {"id": "a" * 32, "choices": None}, {"choices": []}, missing)
    raw.add(RawResponse([body]))
    deltas, result = await stream_all(raw_client, chat_request())
    assert (deltas, result.text) == (["a", "b"], "ab")


async def test_summary_text_wins_over_differing_deltas(
    raw: RawServer, raw_client: M2HerClient
) -> None:
    raw.add(RawResponse([sse(chunk("draft", finish_reason="stop"), summary("final"))]))
    deltas, result = await stream_all(raw_client, chat_request())
    assert deltas == ["draft"]
    assert result.text == "final"


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "text/event-stream"]
)
async def test_error_as_plain_json_despite_stream(
    raw: RawServer, raw_client: M2HerClient, content_type: str
) -> None:
    body = json.dumps({"base_resp": {"status_code": 2056, "status_msg": "usage limit exceeded"}})
    raw.add(RawResponse([body.encode()[:10], body.encode()[10:]], content_type=content_type))
    with pytest.raises(errors.UsageWindowExceeded):
        await stream_all(raw_client, chat_request())


async def test_error_as_one_sse_event(raw: RawServer, raw_client: M2HerClient) -> None:
    event = {
        "id": "e" * 32,
        "choices": None,
        "usage": {"total_tokens": 0},
        "input_sensitive": True,
        "input_sensitive_type": 1,
        "base_resp": {"status_code": 1026, "status_msg": "input new_sensitive"},
    }
    raw.add(RawResponse([sse(event)]))
    with pytest.raises(errors.InputBlocked) as caught:
        await stream_all(raw_client, chat_request())
    assert caught.value.trace_id == "e" * 32  # no Trace-Id header: the body id


async def test_late_output_sensitive_keeps_the_partial_text_apart(
    raw: RawServer, raw_client: M2HerClient
) -> None:
    late = {**summary("Hello there"), "output_sensitive": True, "output_sensitive_type": 6}
    raw.add(RawResponse([sse(chunk("Hello "), chunk("there", finish_reason="stop"), late)]))
    deltas, error = await stream_until_error(raw_client, chat_request())
    assert isinstance(error, errors.OutputBlocked)
    assert deltas == ["Hello ", "there"]
    assert error.partial_text == "Hello there"
    assert error.flags.output_sensitive_type == 6


async def test_empty_blocked_summary_keeps_the_streamed_text_as_partial(
    raw: RawServer, raw_client: M2HerClient
) -> None:
    late = {**summary(""), "output_sensitive": True, "output_sensitive_type": 1}
    raw.add(RawResponse([sse(chunk("Hello "), chunk("there", finish_reason="stop"), late)]))
    _, error = await stream_until_error(raw_client, chat_request())
    assert isinstance(error, errors.OutputBlocked)
    assert error.partial_text == "Hello there"


async def test_late_error_event_raises_its_class_with_partial_text_and_no_retry(
    raw: RawServer, raw_client: M2HerClient
) -> None:
    late = {"choices": None, "base_resp": {"status_code": 1000, "status_msg": "unknown error"}}
    raw.add(RawResponse([sse(chunk("Half a "), chunk("rep"), late)]))
    with pytest.raises(errors.ServerError) as caught:
        await stream_all(raw_client, chat_request())
    assert caught.value.code == 1000
    assert caught.value.partial_text == "Half a rep"
    assert len(raw.bodies) == 1


async def test_stream_that_ends_without_finish_is_interrupted(
    raw: RawServer, raw_client: M2HerClient
) -> None:
    raw.add(RawResponse([sse(chunk("Half a "), chunk("rep"))]))
    with pytest.raises(errors.StreamInterrupted) as caught:
        await stream_all(raw_client, chat_request())
    assert caught.value.partial_text == "Half a rep"


async def test_stream_dropped_after_finish_is_complete(
    raw: RawServer, raw_client: M2HerClient
) -> None:
    raw.add(RawResponse([sse(chunk("Done", finish_reason="stop"))], drop=True))
    _, result = await stream_all(raw_client, chat_request())
    assert result.text == "Done"


async def test_empty_stream_is_transient_and_retried(
    raw: RawServer, raw_client: M2HerClient
) -> None:
    raw.add(
        RawResponse([b": nothing\n\n"]),
        RawResponse([b""], drop=True),
        RawResponse([sse(chunk("ok", finish_reason="stop"))]),
    )
    _, result = await stream_all(raw_client, chat_request())
    assert result.text == "ok"
    assert len(raw.bodies) == 3


async def test_malformed_event_before_text_is_retried(
    raw: RawServer, raw_client: M2HerClient
) -> None:
    raw.add(
        RawResponse([b"data: {not json\n\n"]),
        RawResponse([sse(chunk("ok", finish_reason="stop"))]),
    )
    _, result = await stream_all(raw_client, chat_request())
    assert result.text == "ok"


async def test_non_streaming_call_accepts_an_sse_body(raw: RawServer) -> None:
    raw.add(RawResponse([STANDARD]))
    async with M2HerClient(
        TEST_API_KEY, base_url=raw.base_url, retry=FAST_RETRY, timeouts=FAST_TIMEOUTS
    ) as client:
        result = await client.complete(chat_request())
    assert result.text == REPLY


async def test_non_streaming_body_that_is_not_json_is_a_server_error(raw: RawServer) -> None:
    raw.add(RawResponse([b"<html>oops</html>"], content_type="text/html"))
    async with M2HerClient(
        TEST_API_KEY, base_url=raw.base_url, retry=RetryPolicy(max_attempts=1)
    ) as client:
        with pytest.raises(errors.ServerError, match="not JSON"):
            await client.complete(chat_request())


async def test_non_streaming_success_without_base_resp(raw: RawServer) -> None:
    body = {"choices": [{"index": 0, "finish_reason": "stop", "message": {"content": "hi"}}]}
    raw.add(RawResponse([json.dumps(body).encode()], content_type="application/json"))
    async with M2HerClient(TEST_API_KEY, base_url=raw.base_url) as client:
        result = await client.complete(chat_request())
    assert (result.text, result.trace_id, result.usage) == ("hi", None, Usage())


@pytest.mark.parametrize("choices", [None, []])
async def test_non_streaming_body_without_choices_is_transient(
    raw: RawServer, choices: list[object] | None
) -> None:
    empty = {"choices": choices, "base_resp": {"status_code": 0, "status_msg": "success"}}
    ok = {"choices": [{"index": 0, "finish_reason": "stop", "message": {"content": "hi"}}]}
    raw.add(
        RawResponse([json.dumps(empty).encode()], content_type="application/json"),
        RawResponse([json.dumps(ok).encode()], content_type="application/json"),
    )
    async with M2HerClient(
        TEST_API_KEY, base_url=raw.base_url, retry=FAST_RETRY, timeouts=FAST_TIMEOUTS
    ) as client:
        assert (await client.complete(chat_request())).text == "hi"
    assert len(raw.bodies) == 2


async def test_a_raised_flag_stays_raised_when_later_events_say_false(
    raw: RawServer, raw_client: M2HerClient
) -> None:
    flagged = chunk("a", input_sensitive=True, input_sensitive_type=5)
    # output_sensitive_int is undocumented: passed through raw, it does not clear anything.
    clear = {"input_sensitive": False, "input_sensitive_type": 0, "output_sensitive_int": 3}
    raw.add(RawResponse([sse(flagged, chunk("b", finish_reason="stop", **clear), summary("ab"))]))
    _, result = await stream_all(raw_client, chat_request())
    assert result.flags.input_sensitive
    assert result.flags.input_sensitive_type == 5
    assert result.flags.output_sensitive_int == 3
    assert not result.flags.output_sensitive
