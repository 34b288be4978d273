"""Fixtures of the M2-her tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.llm.client import M2HerClient, RetryPolicy
from bot.llm.fake import FakeM2Her
from tests.conftest import FAST_RETRY, FAST_TIMEOUTS, TEST_API_KEY
from tests.llm.helpers import RawServer


@pytest.fixture
async def one_try(fake_m2her: FakeM2Her) -> AsyncIterator[M2HerClient]:
    """A client that never retries, so each error surfaces as it is."""
    async with M2HerClient(
        TEST_API_KEY,
        base_url=fake_m2her.base_url,
        retry=RetryPolicy(max_attempts=1),
        timeouts=FAST_TIMEOUTS,
    ) as client:
        yield client


@pytest.fixture
async def raw() -> AsyncIterator[RawServer]:
    """A raw loopback server that writes exact bytes (see :class:`RawServer`)."""
    server = RawServer()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def raw_client(raw: RawServer) -> AsyncIterator[M2HerClient]:
    """A client for the raw server, with fast retries."""
    async with M2HerClient(
        TEST_API_KEY, base_url=raw.base_url, retry=FAST_RETRY, timeouts=FAST_TIMEOUTS
    ) as client:
        yield client
