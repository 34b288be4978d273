"""``MINIMAX_API_STYLE=openai``: the same requests to ``/v1/chat/completions``, read by the
same liberal rules, failing with the same typed errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from bot.llm import errors
from bot.llm.client import M2HerClient, RetryPolicy
from bot.llm.errors import M2HerError
from bot.llm.fake import OPENAI_PATH, Error, FakeM2Her, Reply, reply_text
from bot.llm.types import SensitiveType, Usage
from bot.settings import Settings
from tests.conftest import FAST_RETRY, FAST_TIMEOUTS, TEST_API_KEY
from tests.llm.helpers import (
    RawResponse,
    RawServer,
    chat_request,
    reply,
    stream_all,
    stream_until_error,
)

STREAMING = pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])


def openai_client(base_url: str, retry: RetryPolicy = FAST_RETRY) -> M2HerClient:
    return M2HerClient(
        TEST_API_KEY, base_url=base_url, api_style="openai", retry=retry, timeouts=FAST_TIMEOUTS
    )


@pytest.fixture
async def client(fake_m2her: FakeM2Her) -> AsyncIterator[M2HerClient]:
    async with openai_client(fake_m2her.base_url) as client:
        yield client


@STREAMING
async def test_a_reply_over_the_openai_route(
    fake_m2her: FakeM2Her, client: M2HerClient, streaming: bool
) -> None:
    request = chat_request(max_completion_tokens=512)
    result = await reply(client, request, streaming=streaming)

    (recorded,) = fake_m2her.requests
    assert recorded.path == OPENAI_PATH
    # The very body chatcompletion_v2 gets: same model, roles and names.
    assert recorded.body == request.to_wire(stream=streaming)
    assert recorded.body["model"] == "M2-her"
    assert result.text == reply_text(recorded.body["messages"])
    assert result.finish_reason == "stop"
    assert result.usage.prompt_tokens > 0
    assert result.usage.completion_tokens > 0
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert result.trace_id is not None
    assert len(result.trace_id) == 32


async def test_the_stream_yields_deltas_and_reads_the_closing_usage_chunk(
    client: M2HerClient,
) -> None:
    deltas, result = await stream_all(client, chat_request())
    assert len(deltas) > 1
    assert "".join(deltas) == result.text  # no summary event to double it
    assert result.usage != Usage()


@STREAMING
async def test_a_cut_reply_says_length(client: M2HerClient, streaming: bool) -> None:
    result = await reply(client, chat_request(max_completion_tokens=3), streaming=streaming)
    assert result.finish_reason == "length"


@STREAMING
async def test_sensitive_flags_come_through(client: M2HerClient, streaming: bool) -> None:
    client_request = chat_request("[[flag:input:5]] hello")
    result = await reply(client, client_request, streaming=streaming)
    assert result.flags.input_sensitive
    assert result.flags.input_sensitive_type == SensitiveType(5)


# code → class, the HTTP status the fake gives it on this route
ROUTE_TABLE: list[tuple[int, type[M2HerError], int]] = [
    (1000, errors.ServerError, 500),
    (1001, errors.RequestTimeout, 408),
    (1002, errors.RateLimited, 429),
    (1004, errors.AuthenticationError, 401),
    (1008, errors.InsufficientBalance, 402),
    (1026, errors.InputBlocked, 400),
    (2013, errors.InvalidParams, 400),
    (2049, errors.AuthenticationError, 401),
    (2056, errors.UsageWindowExceeded, 429),
    (9999, errors.ServerError, 500),  # a code the table does not know: the status decides
]


@STREAMING
@pytest.mark.parametrize(("code", "cls", "status"), ROUTE_TABLE)
async def test_errors_on_the_openai_route_are_the_same_typed_errors(
    fake_m2her: FakeM2Her, streaming: bool, code: int, cls: type[M2HerError], status: int
) -> None:
    fake_m2her.enqueue(Error(code))
    async with openai_client(fake_m2her.base_url, RetryPolicy(max_attempts=1)) as one_try:
        with pytest.raises(M2HerError) as caught:
            await reply(one_try, chat_request(), streaming=streaming)
    assert type(caught.value) is cls
    assert caught.value.http_status == status
    assert caught.value.code == code
    assert caught.value.trace_id is not None


async def test_the_context_window_check_is_a_context_too_long_error(client: M2HerClient) -> None:
    with pytest.raises(errors.ContextTooLong) as caught:
        await client.complete(chat_request("word " * 70_000, max_completion_tokens=2048))
    assert (caught.value.code, caught.value.http_status) == (2013, 400)


async def test_a_mid_stream_error_keeps_the_text_so_far(
    fake_m2her: FakeM2Her, client: M2HerClient
) -> None:
    fake_m2her.enqueue(Error(1000, after_chunks=2))
    deltas, error = await stream_until_error(client, chat_request())
    assert type(error) is errors.ServerError
    assert (error.code, error.http_status) == (1000, 500)
    assert len(deltas) == 2
    assert error.partial_text == "".join(deltas)
    assert len(fake_m2her.requests) == 1  # text was shown: no retry


async def test_a_retryable_error_is_retried_on_the_openai_route(
    fake_m2her: FakeM2Her, client: M2HerClient
) -> None:
    fake_m2her.enqueue(Error(1002), Error(1000), Reply(text="Come in."))
    _, result = await stream_all(client, chat_request())
    assert result.text == "Come in."
    assert [r.path for r in fake_m2her.requests] == [OPENAI_PATH] * 3


async def test_the_setting_picks_the_route(fake_m2her: FakeM2Her) -> None:
    settings = Settings.from_environ(
        {
            "MINIMAX_API_KEY": TEST_API_KEY,
            "MINIMAX_BASE_URL": fake_m2her.base_url,
            "MINIMAX_API_STYLE": "openai",
        }
    )
    async with M2HerClient.from_settings(settings.m2her) as client:
        assert "api_style='openai'" in repr(client)
        await client.complete(chat_request())
    assert fake_m2her.requests[-1].path == OPENAI_PATH


def test_an_unknown_style_is_refused() -> None:
    with pytest.raises(ValueError, match="API style"):
        M2HerClient(TEST_API_KEY, api_style="anthropic")  # type: ignore[arg-type]


# -- exact bytes: what OpenAI-style streams may look like -----------------------------------


def openai_chunk(content: str | None, **extra: object) -> str:
    """A chunk as OpenAI-style servers send it, fields missing where they may be."""
    delta = {"role": ""} if content is None else {"content": content, "role": ""}
    return json.dumps({"choices": [{"index": 0, "delta": delta, **extra}], "usage": None})


async def test_a_lean_openai_stream_with_crlf_usage_chunk_and_done(raw: RawServer) -> None:
    events = [
        openai_chunk("Get in"),
        openai_chunk(" here."),
        openai_chunk(None, finish_reason="stop"),
        '{"id":"x1","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":4,'
        '"total_tokens":34}}',
        "[DONE]",
    ]
    body = "".join(f"data: {e}\r\n\r\n" for e in events).encode()
    raw.add(RawResponse([body[:37], body[37:90], body[90:]]))
    async with openai_client(raw.base_url) as client:
        deltas, result = await stream_all(client, chat_request())
    assert raw.paths == [OPENAI_PATH]
    assert deltas == ["Get in", " here."]
    assert (result.text, result.finish_reason) == ("Get in here.", "stop")
    assert result.usage == Usage(prompt_tokens=30, completion_tokens=4, total_tokens=34)
    assert result.response_id == "x1"


async def test_an_openai_stream_without_a_finish_is_interrupted(raw: RawServer) -> None:
    body = f"data: {openai_chunk('Get in')}\n\ndata: [DONE]\n\n".encode()
    raw.add(*[RawResponse([body])] * 4)
    async with openai_client(raw.base_url) as client:
        with pytest.raises(errors.StreamInterrupted):
            await stream_all(client, chat_request())
