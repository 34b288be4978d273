"""Storage fixtures: an open storage on each backend of ``database_url``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.storage import Storage, open_storage


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    """A migrated, open :class:`Storage` on ``database_url``; closed afterwards."""
    opened = await open_storage(database_url)
    yield opened
    await opened.close()
