"""Every row of the error table, as JSON, as one SSE event and as plain JSON on a stream."""

from __future__ import annotations

import pytest

from bot.llm import errors
from bot.llm.client import M2HerClient, RetryPolicy
from bot.llm.errors import M2HerError
from bot.llm.fake import INVALID_API_KEY, Error, FakeM2Her, HttpError
from bot.llm.types import ChatMessage, ChatRequest, Role, SensitiveType
from tests.conftest import TEST_API_KEY
from tests.llm.helpers import chat_request, stream_all

# code → (class, retryable)
TABLE: list[tuple[int, type[M2HerError], bool]] = [
    (1000, errors.ServerError, True),
    (1001, errors.RequestTimeout, True),
    (1002, errors.RateLimited, True),
    (1004, errors.AuthenticationError, False),
    (1008, errors.InsufficientBalance, False),
    (1013, errors.ServerError, True),
    (1024, errors.ServerError, True),
    (1026, errors.InputBlocked, False),
    (1027, errors.OutputBlocked, False),
    (1033, errors.ServerError, True),
    (1039, errors.RateLimited, True),
    (1041, errors.RateLimited, True),
    (1042, errors.InvalidInput, False),
    (2013, errors.InvalidParams, False),
    (2038, errors.AuthenticationError, False),
    (2045, errors.RateLimited, True),
    (2049, errors.AuthenticationError, False),
    (2056, errors.UsageWindowExceeded, False),
    (2061, errors.UnknownError, False),
    (2062, errors.UnknownError, False),
    (9999, errors.UnknownError, False),
]

MODES = ["json", "sse-event", "plain-json-on-stream"]


async def call(client: M2HerClient, mode: str, request: ChatRequest | None = None) -> None:
    request = request or chat_request()
    if mode == "json":
        await client.complete(request)
    else:
        await stream_all(client, request)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("code", "cls", "retryable"), TABLE)
async def test_error_code_maps_to_its_class(
    fake_m2her: FakeM2Her,
    one_try: M2HerClient,
    mode: str,
    code: int,
    cls: type[M2HerError],
    retryable: bool,
) -> None:
    fake_m2her.enqueue(Error(code, f"message for {code}", as_json=mode == "plain-json-on-stream"))
    with pytest.raises(M2HerError) as caught:
        await call(one_try, mode)
    error = caught.value
    assert type(error) is cls
    assert error.retryable is retryable
    assert error.code == code
    assert error.status_msg == f"message for {code}"
    assert error.trace_id is not None
    assert len(error.trace_id) == 32
    assert error.trace_id in str(error)
    assert str(code) in str(error)
    assert error.user_message
    assert len(error.user_message) < 100
    assert error.partial_text == ""


@pytest.mark.parametrize("mode", MODES)
async def test_minimal_error_envelope_is_understood(
    fake_m2her: FakeM2Her, one_try: M2HerClient, mode: str
) -> None:
    fake_m2her.enqueue(Error(1008, minimal=True, as_json=mode == "plain-json-on-stream"))
    with pytest.raises(errors.InsufficientBalance) as caught:
        await call(one_try, mode)
    # No body id: the Trace-Id header is the trace id.
    assert caught.value.trace_id is not None


@pytest.mark.parametrize("mode", MODES)
async def test_context_window_2013_is_context_too_long(
    fake_m2her: FakeM2Her, one_try: M2HerClient, mode: str
) -> None:
    fake_m2her.enqueue(
        Error(2013, "invalid params, context window exceeds limit", as_json=mode != "sse-event")
    )
    with pytest.raises(errors.ContextTooLong) as caught:
        await call(one_try, mode)
    assert isinstance(caught.value, errors.InvalidParams)
    assert "too long" in caught.value.user_message


async def test_real_context_overflow_from_the_fake_is_context_too_long(
    fake_m2her: FakeM2Her, one_try: M2HerClient
) -> None:
    huge = ChatRequest((ChatMessage(Role.USER, "word " * 60_000, "Sam"),))
    with pytest.raises(errors.ContextTooLong):
        await one_try.complete(huge)


@pytest.mark.parametrize("mode", ["json", "sse-event"])
async def test_1039_is_context_too_long_only_when_the_prompt_is_near_the_window(
    fake_m2her: FakeM2Her, mode: str
) -> None:
    big = ChatRequest(
        (ChatMessage(Role.USER, "word " * 48_000, "Sam"),), max_completion_tokens=2048
    )
    fake_m2her.enqueue(Error(1039), Error(1039))
    async with M2HerClient(
        TEST_API_KEY, base_url=fake_m2her.base_url, retry=RetryPolicy(base_delay=0.01)
    ) as client:
        with pytest.raises(errors.ContextTooLong):
            await call(client, mode, big)
        assert len(fake_m2her.requests) == 1  # not retried
        # A small prompt: 1039 is a throttle, retried, and the retry succeeds.
        await call(client, mode, chat_request())
    assert len(fake_m2her.requests) == 3


@pytest.mark.parametrize("mode", ["json", "sse-event"])
@pytest.mark.parametrize("kind", list(range(1, 8)))
async def test_input_blocked_carries_its_type(
    fake_m2her: FakeM2Her, one_try: M2HerClient, mode: str, kind: int
) -> None:
    fake_m2her.enqueue(Error(1026, input_sensitive_type=kind))
    with pytest.raises(errors.InputBlocked) as caught:
        await call(one_try, mode)
    assert caught.value.flags.input_sensitive
    assert caught.value.sensitive_type == SensitiveType(kind)


@pytest.mark.parametrize("mode", ["json", "sse-event"])
@pytest.mark.parametrize("kind", list(range(1, 8)))
async def test_output_blocked_carries_its_type(
    fake_m2her: FakeM2Her, one_try: M2HerClient, mode: str, kind: int
) -> None:
    fake_m2her.enqueue(Error(1027, output_sensitive_type=kind))
    with pytest.raises(errors.OutputBlocked) as caught:
        await call(one_try, mode)
    assert caught.value.flags.output_sensitive
    assert caught.value.sensitive_type == SensitiveType(kind)


# status → class, retryable
HTTP_TABLE: list[tuple[int, type[M2HerError], bool]] = [
    (401, errors.AuthenticationError, False),
    (403, errors.AuthenticationError, False),
    (402, errors.InsufficientBalance, False),
    (429, errors.RateLimited, True),
    (408, errors.RequestTimeout, True),
    (504, errors.RequestTimeout, True),
    (500, errors.ServerError, True),
    (502, errors.ServerError, True),
    (503, errors.ServerError, True),
    (400, errors.UnknownError, False),
    (404, errors.UnknownError, False),
]


@pytest.mark.parametrize("mode", ["json", "sse-event"])
@pytest.mark.parametrize(("status", "cls", "retryable"), HTTP_TABLE)
async def test_non_2xx_maps_to_its_class(
    fake_m2her: FakeM2Her,
    one_try: M2HerClient,
    mode: str,
    status: int,
    cls: type[M2HerError],
    retryable: bool,
) -> None:
    fake_m2her.enqueue(HttpError(status))
    with pytest.raises(M2HerError) as caught:
        await call(one_try, mode)
    assert type(caught.value) is cls
    assert caught.value.retryable is retryable
    assert caught.value.http_status == status
    assert caught.value.code is None
    assert caught.value.trace_id is not None  # the fake sends Trace-Id on every answer
    assert "<html>" not in str(caught.value)


async def test_unknown_path_is_a_404_from_the_fake(fake_m2her: FakeM2Her) -> None:
    async with M2HerClient(
        TEST_API_KEY, base_url=fake_m2her.base_url + "/wrong", retry=RetryPolicy(max_attempts=3)
    ) as client:
        with pytest.raises(errors.UnknownError) as caught:
            await client.complete(chat_request())
    assert caught.value.http_status == 404
    assert fake_m2her.requests == []


async def test_the_invalid_test_key_gets_2049(fake_m2her: FakeM2Her) -> None:
    async with M2HerClient(INVALID_API_KEY, base_url=fake_m2her.base_url) as client:
        with pytest.raises(errors.AuthenticationError) as caught:
            await client.complete(chat_request())
    assert caught.value.code == 2049
    assert len(fake_m2her.requests) == 1


async def test_a_key_the_fake_does_not_know_is_refused_with_1004() -> None:
    async with (
        FakeM2Her(api_key="sk-right") as fake,
        M2HerClient("sk-wrong", base_url=fake.base_url) as client,
    ):
        with pytest.raises(errors.AuthenticationError) as caught:
            await client.complete(chat_request())
        assert caught.value.code == 1004
        async with M2HerClient("sk-right", base_url=fake.base_url) as right:
            assert (await right.complete(chat_request())).text
