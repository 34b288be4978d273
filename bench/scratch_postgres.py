"""A PostgreSQL database of its own for one bench run, dropped afterwards."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]

ADMIN_URL = os.environ.get("TROUPE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.asynccontextmanager
async def scratch_postgres(prefix: str) -> AsyncIterator[str]:
    """Create ``<prefix>_<random>`` on the server of ``TROUPE_TEST_POSTGRES_URL`` and yield
    its SQLAlchemy URL (asyncpg); the database is dropped when the block ends."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        dsn = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        yield dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    finally:
        await _admin(f'DROP DATABASE "{name}" WITH (FORCE)')


async def _admin(statement: str) -> None:
    admin = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()
