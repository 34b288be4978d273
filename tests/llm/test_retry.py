"""Retries, backoff and timeouts, driven by the fake's faults and delays."""

from __future__ import annotations

import random
import socket
import time

import pytest

from bot.llm import errors
from bot.llm.client import M2HerClient, RetryPolicy, Timeouts
from bot.llm.fake import Drop, Error, FakeM2Her, HttpError, Reply
from bot.llm.retry import RetryState
from tests.conftest import TEST_API_KEY
from tests.llm.helpers import chat_request, reply, stream_all, stream_until_error

TINY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.02, max_total=5.0)


def client_for(fake: FakeM2Her, retry: RetryPolicy = TINY, **timeouts: float) -> M2HerClient:
    return M2HerClient(
        TEST_API_KEY, base_url=fake.base_url, retry=retry, timeouts=Timeouts(**timeouts)
    )


@pytest.mark.parametrize(
    "fault",
    [Error(1002), Error(1000), Error(1041), Error(2045), HttpError(502), HttpError(429), Drop()],
    ids=["1002", "1000", "1041", "2045", "502", "429", "drop"],
)
@pytest.mark.parametrize("streaming", [False, True])
async def test_retryable_faults_are_retried_until_success(
    fake_m2her: FakeM2Her, fault: Error | HttpError | Drop, streaming: bool
) -> None:
    fake_m2her.enqueue(fault, fault)
    async with client_for(fake_m2her) as client:
        if streaming:
            deltas, result = await stream_all(client, chat_request())
            assert "".join(deltas) == result.text  # nothing from failed tries leaks in
        else:
            result = await client.complete(chat_request())
    assert result.text.startswith("Aria heard Sam")
    assert len(fake_m2her.requests) == 3


@pytest.mark.parametrize("code", [1004, 1008, 1026, 1027, 2013, 2056])
async def test_non_retryable_errors_are_not_retried(fake_m2her: FakeM2Her, code: int) -> None:
    fake_m2her.enqueue(Error(code))
    async with client_for(fake_m2her) as client:
        with pytest.raises(errors.M2HerError):
            await client.complete(chat_request())
    assert len(fake_m2her.requests) == 1


async def test_attempts_are_bounded(fake_m2her: FakeM2Her) -> None:
    fake_m2her.enqueue(*[Error(1002)] * 10)
    async with client_for(fake_m2her, RetryPolicy(max_attempts=3, base_delay=0.01)) as client:
        with pytest.raises(errors.RateLimited):
            await client.complete(chat_request())
    assert len(fake_m2her.requests) == 3


async def test_total_retry_time_is_bounded(fake_m2her: FakeM2Her) -> None:
    fake_m2her.enqueue(*[Error(1002)] * 200)
    policy = RetryPolicy(max_attempts=200, base_delay=0.05, max_delay=0.05, max_total=0.4)
    started = time.monotonic()
    async with client_for(fake_m2her, policy) as client:
        with pytest.raises(errors.RateLimited):
            await client.complete(chat_request())
    elapsed = time.monotonic() - started
    assert elapsed < 0.4 + 0.3
    assert 2 < len(fake_m2her.requests) < 200


@pytest.mark.parametrize("streaming", [False, True])
async def test_first_byte_timeout_is_retried_once_only(
    fake_m2her: FakeM2Her, streaming: bool
) -> None:
    fake_m2her.enqueue(*[Reply(delay=1.0)] * 3)
    started = time.monotonic()
    async with client_for(fake_m2her, first_byte=0.1) as client:
        with pytest.raises(errors.RequestTimeout):
            await reply(client, chat_request(), streaming=streaming)
    assert time.monotonic() - started < 0.8
    assert len(fake_m2her.requests) == 2


async def test_timeout_retries_are_configurable(fake_m2her: FakeM2Her) -> None:
    fake_m2her.enqueue(Reply(delay=1.0), Reply())
    policy = RetryPolicy(base_delay=0.01, timeout_retries=0)
    async with client_for(fake_m2her, policy, first_byte=0.1) as client:
        with pytest.raises(errors.RequestTimeout):
            await client.complete(chat_request())
    assert len(fake_m2her.requests) == 1


async def test_a_slow_first_try_then_success(fake_m2her: FakeM2Her) -> None:
    fake_m2her.enqueue(Reply(delay=1.0))
    async with client_for(fake_m2her, first_byte=0.1) as client:
        result = await client.complete(chat_request())
    assert result.finish_reason == "stop"
    assert len(fake_m2her.requests) == 2


async def test_error_1001_is_retried_at_most_once(fake_m2her: FakeM2Her) -> None:
    fake_m2her.enqueue(Error(1001), Error(1001), Error(1001))
    async with client_for(fake_m2her) as client:
        with pytest.raises(errors.RequestTimeout) as caught:
            await client.complete(chat_request())
    assert caught.value.code == 1001
    assert len(fake_m2her.requests) == 2


async def test_chunk_gap_timeout_mid_stream_is_interrupted_with_partial_text(
    fake_m2her: FakeM2Her,
) -> None:
    fake_m2her.enqueue(Reply(chunk_delay=0.3))
    started = time.monotonic()
    async with client_for(fake_m2her, first_byte=2.0, chunk_gap=0.1) as client:
        deltas, error = await stream_until_error(client, chat_request())
    assert time.monotonic() - started < 1.0
    assert isinstance(error, errors.StreamInterrupted)
    assert deltas == [error.partial_text]
    assert deltas[0]
    assert len(fake_m2her.requests) == 1


async def test_slow_but_steady_stream_within_the_gap_completes(fake_m2her: FakeM2Her) -> None:
    fake_m2her.enqueue(Reply(chunk_delay=0.02))
    async with client_for(fake_m2her, first_byte=2.0, chunk_gap=0.5) as client:
        deltas, result = await stream_all(client, chat_request())
    assert "".join(deltas) == result.text
    assert len(deltas) > 3


async def test_total_timeout_bounds_one_attempt(fake_m2her: FakeM2Her) -> None:
    fake_m2her.enqueue(Reply(chunk_delay=0.05))
    policy = RetryPolicy(max_attempts=1)
    started = time.monotonic()
    async with client_for(fake_m2her, policy, chunk_gap=1.0, total=0.2) as client:
        with pytest.raises(errors.StreamInterrupted):
            await stream_all(client, chat_request())
    assert time.monotonic() - started < 0.6


async def test_error_event_before_any_text_is_retried_in_a_stream(fake_m2her: FakeM2Her) -> None:
    fake_m2her.enqueue(Error(1002), Error(1033, as_json=True))
    async with client_for(fake_m2her) as client:
        deltas, result = await stream_all(client, chat_request())
    assert "".join(deltas) == result.text
    assert len(fake_m2her.requests) == 3


async def test_mid_stream_1027_is_output_blocked_and_not_retried(fake_m2her: FakeM2Her) -> None:
    fake_m2her.enqueue(Error(1027, output_sensitive_type=6, after_chunks=2))
    async with client_for(fake_m2her) as client:
        deltas, error = await stream_until_error(client, chat_request())
    assert isinstance(error, errors.OutputBlocked)
    assert len(deltas) == 2
    assert error.partial_text == "".join(deltas)
    assert error.flags.output_sensitive_type == 6
    assert len(fake_m2her.requests) == 1


async def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with M2HerClient(TEST_API_KEY, base_url=f"http://127.0.0.1:{port}", retry=TINY) as client:
        with pytest.raises(errors.ServerError, match="connection failed"):
            await client.complete(chat_request())


class _Ceiling(random.Random):
    """Always picks the top of the jitter range, so delays are predictable."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_backoff_is_exponential_capped_and_bounded_in_total() -> None:
    now = [0.0]
    policy = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=3.0, max_total=6.0)
    state = RetryState(policy, rng=_Ceiling(), clock=lambda: now[0])
    delays = []
    while (delay := state.delay_after(errors.RateLimited("rate limit"))) is not None:
        delays.append(delay)
        now[0] += delay
    assert delays == [0.5, 1.0, 2.0]  # the next, 3.0, would pass max_total=6.0
    assert state.attempt == 4


def test_full_jitter_stays_within_the_range() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=4.0, max_total=1e9)
    state = RetryState(policy, rng=random.Random(7))
    delays = [state.delay_after(errors.ServerError("x")) for _ in range(6)]
    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert all(d is not None and 0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len({d for d in delays}) == 6  # jittered, not fixed


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base_delay=-1)


async def test_connect_timeout_applies_and_is_retried() -> None:
    # A listener whose accept queue is full: the kernel drops further SYNs, so
    # connecting hangs until the client's connect timeout.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
            policy = RetryPolicy(max_attempts=2, base_delay=0.01)
            started = time.monotonic()
            async with M2HerClient(
                TEST_API_KEY,
                base_url=f"http://127.0.0.1:{port}",
                retry=policy,
                timeouts=Timeouts(connect=0.2),
            ) as client:
                with pytest.raises(errors.ServerError, match=r"could not connect within 0\.2s"):
                    await client.complete(chat_request())
            assert 0.4 <= time.monotonic() - started < 2.0  # two tries of 0.2 s
        finally:
            for filler in fillers:
                filler.close()
