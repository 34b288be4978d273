"""The API's other error shapes: real HTTP statuses with MiniMax's gateway body
(``{"type": "error", "error": {…}}``) or OpenAI's (``{"error": {…}}``), and HTML pages,
through the real client against the fake and a raw server."""

from __future__ import annotations

import json
import logging

import pytest

from bot.llm import errors
from bot.llm.client import M2HerClient
from bot.llm.errors import M2HerError
from bot.llm.fake import UNKNOWN_ERROR_MESSAGE, FakeM2Her, HttpError, Reply
from tests.conftest import FAST_RETRY, FAST_TIMEOUTS, TEST_API_KEY
from tests.llm.helpers import (
    RawResponse,
    RawServer,
    chat_request,
    chunk,
    reply,
    sse,
    stream_until_error,
)

STREAMING = pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])


async def failure(client: M2HerClient, *, streaming: bool) -> M2HerError:
    with pytest.raises(M2HerError) as caught:
        await reply(client, chat_request(), streaming=streaming)
    return caught.value


# HTTP status, the gateway's message → class, API code, retryable
GATEWAY_TABLE: list[tuple[int, str, type[M2HerError], int | None, bool]] = [
    (500, UNKNOWN_ERROR_MESSAGE, errors.ServerError, 1000, True),
    (400, "invalid params, invalid function arguments json string (2013)",
     errors.InvalidParams, 2013, False),
    (400, "invalid params, context window exceeds limit (2013)",
     errors.ContextTooLong, 2013, False),
    (429, "rate limit (1002)", errors.RateLimited, 1002, True),
    (401, "invalid api key (2049)", errors.AuthenticationError, 2049, False),
    (500, "input new_sensitive (1026)", errors.InputBlocked, 1026, False),
    # No bracketed code (or one the table does not know): the HTTP status decides.
    (503, "service unavailable", errors.ServerError, None, True),
    (502, "upstream failure, 7 (31337)", errors.ServerError, 31337, True),
    (401, "login fail", errors.AuthenticationError, None, False),
    (429, "too many requests", errors.RateLimited, None, True),
    (400, "bad request", errors.UnknownError, None, False),
]  # fmt: skip


@STREAMING
@pytest.mark.parametrize(("status", "message", "cls", "code", "retryable"), GATEWAY_TABLE)
async def test_the_gateway_error_body_maps_to_the_typed_error(
    fake_m2her: FakeM2Her,
    one_try: M2HerClient,
    streaming: bool,
    status: int,
    message: str,
    cls: type[M2HerError],
    code: int | None,
    retryable: bool,
) -> None:
    fake_m2her.enqueue(HttpError.gateway(status, message))
    error = await failure(one_try, streaming=streaming)
    assert type(error) is cls
    assert (error.code, error.http_status, error.retryable) == (code, status, retryable)
    assert error.status_msg == message  # MiniMax's own words, not "HTTP 500 …"
    assert error.trace_id is not None
    assert len(error.trace_id) == 32
    assert error.user_message == cls.default_user_message  # what the chat user sees


# status, message, type, code → class, API code
OPENAI_TABLE: list[tuple[int, str, str, str | int | None, type[M2HerError], int | None]] = [
    (401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key",
     errors.AuthenticationError, None),
    (429, "Rate limit reached", "rate_limit_error", "rate_limit_exceeded",
     errors.RateLimited, None),
    (500, "The server had an error", "server_error", None, errors.ServerError, None),
    (503, "overloaded", "server_error", "1002", errors.RateLimited, 1002),
    (402, "insufficient balance", "insufficient_quota", 1008,
     errors.InsufficientBalance, 1008),
]  # fmt: skip


@STREAMING
@pytest.mark.parametrize(("status", "message", "type_", "code", "cls", "api_code"), OPENAI_TABLE)
async def test_the_openai_error_body_maps_to_the_typed_error(
    fake_m2her: FakeM2Her,
    one_try: M2HerClient,
    streaming: bool,
    status: int,
    message: str,
    type_: str,
    code: str | int | None,
    cls: type[M2HerError],
    api_code: int | None,
) -> None:
    fake_m2her.enqueue(HttpError.openai(status, message, type_=type_, code=code))
    error = await failure(one_try, streaming=streaming)
    assert type(error) is cls
    assert (error.code, error.http_status, error.status_msg) == (api_code, status, message)


@STREAMING
async def test_an_error_message_quoting_the_key_does_not_carry_it_on(
    fake_m2her: FakeM2Her, one_try: M2HerClient, streaming: bool
) -> None:
    message = f"Incorrect API key provided: {TEST_API_KEY}."
    fake_m2her.enqueue(HttpError.openai(401, message, type_="invalid_request_error"))
    error = await failure(one_try, streaming=streaming)
    assert type(error) is errors.AuthenticationError
    assert error.status_msg == "Incorrect API key provided: ***."
    assert TEST_API_KEY not in repr(error.args)


@STREAMING
async def test_a_5xx_html_page_is_a_server_error_with_its_status(
    fake_m2her: FakeM2Her, one_try: M2HerClient, streaming: bool
) -> None:
    fake_m2her.enqueue(HttpError(503, "<html><body>Service Unavailable</body></html>"))
    error = await failure(one_try, streaming=streaming)
    assert type(error) is errors.ServerError
    assert (error.code, error.http_status) == (None, 503)
    assert error.status_msg.startswith("HTTP 503")
    assert "<html>" not in str(error)


@STREAMING
async def test_a_5xx_json_body_without_an_error_object_falls_back_to_the_status(
    fake_m2her: FakeM2Her, one_try: M2HerClient, streaming: bool
) -> None:
    fake_m2her.enqueue(HttpError(500, json.dumps({"detail": "oops"}), "application/json"))
    error = await failure(one_try, streaming=streaming)
    assert type(error) is errors.ServerError
    assert (error.code, error.http_status) == (None, 500)
    assert error.status_msg.startswith("HTTP 500")


@STREAMING
async def test_a_base_resp_in_a_5xx_body_gives_its_code_and_keeps_the_status(
    fake_m2her: FakeM2Her, one_try: M2HerClient, streaming: bool
) -> None:
    body = json.dumps({"base_resp": {"status_code": 1033, "status_msg": "system error"}})
    fake_m2her.enqueue(HttpError(500, body, "application/json"))
    error = await failure(one_try, streaming=streaming)
    assert type(error) is errors.ServerError
    assert (error.code, error.http_status, error.status_msg) == (1033, 500, "system error")


@STREAMING
async def test_retryable_5xx_json_answers_are_retried_until_success(
    fake_m2her: FakeM2Her, streaming: bool
) -> None:
    fake_m2her.enqueue(HttpError.gateway(500), HttpError.gateway(503, "busy"), Reply(text="Hi."))
    async with M2HerClient(
        TEST_API_KEY, base_url=fake_m2her.base_url, retry=FAST_RETRY, timeouts=FAST_TIMEOUTS
    ) as client:
        result = await reply(client, chat_request(), streaming=streaming)
    assert result.text == "Hi."
    assert len(fake_m2her.requests) == 3


@STREAMING
async def test_a_non_retryable_gateway_error_is_not_retried(
    fake_m2her: FakeM2Her, streaming: bool
) -> None:
    fake_m2her.enqueue(HttpError.gateway(400, "invalid params, bad name (2013)"))
    async with M2HerClient(
        TEST_API_KEY, base_url=fake_m2her.base_url, retry=FAST_RETRY, timeouts=FAST_TIMEOUTS
    ) as client:
        with pytest.raises(errors.InvalidParams):
            await reply(client, chat_request(), streaming=streaming)
    assert len(fake_m2her.requests) == 1


async def test_the_magic_word_asks_for_the_gateway_json(one_try: M2HerClient) -> None:
    with pytest.raises(errors.ServerError) as caught:
        await one_try.complete(chat_request("[[http:500:json]] hello?"))
    assert (caught.value.code, caught.value.http_status) == (1000, 500)
    assert caught.value.status_msg == UNKNOWN_ERROR_MESSAGE


# -- the raw bytes: Trace-Id, request_id, errors inside a 200 stream ----------------------

GATEWAY_500 = json.dumps(
    {
        "type": "error",
        "error": {"type": "server_error", "message": UNKNOWN_ERROR_MESSAGE, "http_code": "500"},
        "request_id": "062a66d39255cef5e797c7af9cd059fe",
    }
).encode()


@STREAMING
async def test_the_trace_id_header_is_kept_and_logged(
    raw: RawServer, raw_client: M2HerClient, streaming: bool, caplog: pytest.LogCaptureFixture
) -> None:
    trace = "0b7f3c2a9d8e41f6a5b4c3d2e1f0a9b8"
    headers = {"Trace-Id": trace}
    raw.add(
        RawResponse([GATEWAY_500], "application/json", status=500, headers=headers),
        RawResponse([b"<html>bad gateway</html>"], "text/html", status=502, headers=headers),
        RawResponse([GATEWAY_500], "application/json", status=500, headers=headers),
        RawResponse([GATEWAY_500], "application/json", status=500, headers=headers),
    )
    with caplog.at_level(logging.WARNING, logger="bot.llm"):
        error = await failure(raw_client, streaming=streaming)
    assert error.trace_id == trace
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.llm"]
    assert len(lines) == 4  # one per failed attempt, the last one without a retry
    assert all(f"trace_id={trace}" in line for line in lines)
    assert "unknown error, 999 (1000) code=1000 http=500" in lines[0]
    assert "HTTP 502" in lines[1]
    assert "http=502" in lines[1]


async def test_without_a_trace_id_header_the_bodys_request_id_stands_in(
    raw: RawServer, raw_client: M2HerClient
) -> None:
    raw.add(*[RawResponse([GATEWAY_500], "application/json", status=500)] * 4)
    error = await failure(raw_client, streaming=False)
    assert error.trace_id == "062a66d39255cef5e797c7af9cd059fe"


@pytest.mark.parametrize(
    ("event", "cls", "code", "http_status"),
    [
        ({"type": "error", "error": {"type": "server_error", "message": UNKNOWN_ERROR_MESSAGE,
          "http_code": "500"}}, errors.ServerError, 1000, 500),
        ({"error": {"message": "Rate limit reached", "type": "rate_limit_error", "code": None}},
         errors.RateLimited, None, None),
        ({"error": {"message": "odd", "type": "who_knows"}}, errors.UnknownError, None, None),
    ],
)  # fmt: skip
async def test_an_error_object_inside_a_200_stream_ends_it_with_the_text_so_far(
    raw: RawServer,
    raw_client: M2HerClient,
    event: dict[str, object],
    cls: type[M2HerError],
    code: int | None,
    http_status: int | None,
) -> None:
    raw.add(RawResponse([sse(chunk("Get in here")), sse(event)]))
    deltas, error = await stream_until_error(raw_client, chat_request())
    assert type(error) is cls
    assert (error.code, error.http_status) == (code, http_status)
    assert deltas == ["Get in here"]
    assert error.partial_text == "Get in here"
