"""The API key never shows up in reprs, errors, tracebacks, logs or recorded requests."""

from __future__ import annotations

import logging
import socket
import traceback

import aiohttp
import pytest

from bot.llm.client import M2HerClient, RetryPolicy, Timeouts
from bot.llm.errors import M2HerError
from bot.llm.fake import Drop, Error, FakeM2Her, HttpError, Reply
from tests.conftest import TEST_API_KEY
from tests.llm.helpers import chat_request, stream_all, stream_until_error

FAULTS = [
    Error(1004),
    Error(1002),
    Error(1027, after_chunks=2),
    HttpError(502),
    HttpError(401),
    Drop(),
    Drop(after_chunks=2),
    Reply(delay=0.5),
]


def assert_no_key(text: str) -> None:
    assert TEST_API_KEY not in text
    assert TEST_API_KEY[7:] not in text  # not even the key without its prefix


def assert_error_is_clean(error: BaseException) -> None:
    assert_no_key(str(error))
    assert_no_key(repr(error))
    assert_no_key("".join(traceback.format_exception(error)))
    if isinstance(error, M2HerError):
        assert_no_key(error.user_message)


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: repr(f))
async def test_key_never_leaks_through_a_failed_call(
    fake_m2her: FakeM2Her, caplog: pytest.LogCaptureFixture, fault: object
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, aiohttp's included
    fake_m2her.enqueue(fault, fault)  # type: ignore[arg-type]
    client = M2HerClient(
        TEST_API_KEY,
        base_url=fake_m2her.base_url,
        retry=RetryPolicy(max_attempts=2, base_delay=0.01),
        timeouts=Timeouts(first_byte=0.1),
    )
    async with client:
        with pytest.raises(M2HerError) as caught:
            await client.complete(chat_request())
        assert_error_is_clean(caught.value)
        fake_m2her.enqueue(fault, fault)  # type: ignore[arg-type]
        _, error = await stream_until_error(client, chat_request())
        assert_error_is_clean(error)
    messages = [record.getMessage() for record in caplog.records]
    for message in messages:
        assert_no_key(message)
    for failure in (caught.value, error):
        logged = [m for m in messages if str(failure) in m]
        assert logged, "every failure is logged"
        if failure.trace_id is not None:
            assert failure.trace_id in logged[0]


async def test_key_is_not_in_reprs_or_recorded_headers(
    fake_m2her: FakeM2Her, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with M2HerClient(TEST_API_KEY, base_url=fake_m2her.base_url) as client:
        assert_no_key(repr(client))
        assert_no_key(str(vars(client).get("base_url")))
        await client.complete(chat_request())
        await stream_all(client, chat_request())
    for recorded in fake_m2her.requests:
        assert recorded.headers["Authorization"] == "Bearer <redacted>"
        assert_no_key(repr(recorded))
    for record in caplog.records:
        assert_no_key(record.getMessage())


async def test_recorded_headers_redact_the_key_in_any_case(fake_m2her: FakeM2Her) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            fake_m2her.base_url + "/v1/text/chatcompletion_v2",
            json={"model": "M2-her", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {TEST_API_KEY}"},
        ) as response,
    ):
        assert (await response.json())["base_resp"]["status_code"] == 0
    (recorded,) = fake_m2her.requests
    assert_no_key(repr(recorded))
    assert "Bearer <redacted>" in recorded.headers.values()


async def test_key_is_not_in_a_connection_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with M2HerClient(
        TEST_API_KEY, base_url=f"http://127.0.0.1:{port}", retry=RetryPolicy(max_attempts=1)
    ) as client:
        with pytest.raises(M2HerError) as caught:
            await client.complete(chat_request())
    assert_error_is_clean(caught.value)
    for record in caplog.records:
        assert_no_key(record.getMessage())


def test_empty_key_is_refused_without_echoing_anything() -> None:
    with pytest.raises(ValueError, match="empty"):
        M2HerClient("   ")
