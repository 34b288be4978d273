"""Database fixtures (a pytest plugin loaded by ``tests/conftest.py``): a fresh database per
test, on SQLite and on PostgreSQL.

``database_url`` is parametrised over both backends. PostgreSQL is the server at
``TROUPE_TEST_POSTGRES_URL`` (default: user postgres on 127.0.0.1:5432, database ``test``);
the session creates a scratch database there and drops it afterwards. If the server cannot
be reached, the PostgreSQL half of every test is skipped and says why.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

ADMIN_URL = os.environ.get("TROUPE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

BACKENDS = ["sqlite", "postgresql"]


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(ADMIN_URL, timeout=3)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@dataclass(frozen=True)
class Postgres:
    """The session's scratch PostgreSQL database: its DSN, or why there is none."""

    dsn: str | None
    unreachable: str = ""

    def require(self) -> str:
        """The DSN; skips the test (saying why) if PostgreSQL is unreachable."""
        if self.dsn is None:
            pytest.skip(self.unreachable)
        return self.dsn


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A scratch PostgreSQL database for this session, dropped at the end."""
    name = f"troupe_storage_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        reason = f"PostgreSQL unreachable at {ADMIN_URL}: {exc!r}"
        if os.environ.get("TROUPE_REQUIRE_POSTGRES"):
            # CI sets this: there, a skipped PostgreSQL half would hide a broken backend.
            pytest.fail(f"{reason} (TROUPE_REQUIRE_POSTGRES is set)")
        yield Postgres(None, reason)
        return
    yield Postgres(ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    asyncio.run(_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


async def empty_postgres(dsn: str) -> None:
    """Drop every table (and the migration history) of the database at ``dsn``."""
    connection = await asyncpg.connect(dsn, timeout=3)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path, postgres: Postgres) -> str:
    """The URL of an empty database: a new SQLite file, or an emptied PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'troupe.sqlite3'}"
    dsn = postgres.require()
    await empty_postgres(dsn)
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a SQLite file that does not exist yet."""
    return f"sqlite+aiosqlite:///{tmp_path / 'troupe.sqlite3'}"


async def cut_connections(dsn: str) -> int:
    """Terminate every other connection to the database at ``dsn`` (a database outage as
    clients see it: their connections die); how many there were."""
    connection = await asyncpg.connect(dsn, timeout=3)
    try:
        cut = await connection.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return len(cut)
    finally:
        await connection.close()
