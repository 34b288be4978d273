"""Fixtures shared by every test package.

``fake_m2her`` is a running :class:`~bot.llm.fake.FakeM2Her` on an ephemeral loopback
port; ``m2her_client`` is an :class:`~bot.llm.client.M2HerClient` pointed at it with
tiny backoff delays so retry paths stay fast.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.llm.client import M2HerClient, RetryPolicy, Timeouts
from bot.llm.fake import FakeM2Her

pytest_plugins = ["tests.databases"]

#: The key tests use against the fake; the secrets tests look for it everywhere.
TEST_API_KEY = "sk-api-test-7f3a9c1e5b"

FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_total=5.0)
FAST_TIMEOUTS = Timeouts(connect=2.0, first_byte=5.0, chunk_gap=5.0)


@pytest.fixture
async def fake_m2her() -> AsyncIterator[FakeM2Her]:
    """A fake M2-her server on 127.0.0.1 and a free port, stopped afterwards."""
    async with FakeM2Her() as fake:
        yield fake


@pytest.fixture
async def m2her_client(fake_m2her: FakeM2Her) -> AsyncIterator[M2HerClient]:
    """A client for ``fake_m2her`` with fast retries; closed afterwards."""
    async with M2HerClient(
        TEST_API_KEY, base_url=fake_m2her.base_url, retry=FAST_RETRY, timeouts=FAST_TIMEOUTS
    ) as client:
        yield client
