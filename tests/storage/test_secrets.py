"""The database URL's password never shows: not in reprs, not in errors, not in logs."""

from __future__ import annotations

import logging

import pytest

from bot.storage import StorageError, open_storage, upgrade
from tests.databases import Postgres

PASSWORD = "pw-9c1e5b-never-show"


def _everything_said(error: BaseException) -> str:
    """The text of an error and of every error chained to it."""
    parts: list[str] = []
    seen: BaseException | None = error
    while seen is not None:
        parts += [str(seen), repr(seen)]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


async def test_storage_repr_hides_the_password(postgres: Postgres) -> None:
    # The test server trusts local connections, so any password gets in.
    dsn = postgres.require().replace("postgres@", f"postgres:{PASSWORD}@", 1)
    storage = await open_storage(dsn)
    try:
        assert PASSWORD not in repr(storage)
        assert PASSWORD not in str(storage)
        assert "***" in repr(storage)
    finally:
        await storage.close()


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+asyncpg://troupe:{PASSWORD}@127.0.0.1:1/troupe",  # nothing listens
        f"postgresql://troupe:{PASSWORD}@127.0.0.1:notaport/troupe",  # unparsable
        f"nosuchdb://troupe:{PASSWORD}@127.0.0.1/troupe",  # unknown driver
        f"troupe:{PASSWORD}@127.0.0.1",  # not a URL at all
    ],
)
async def test_errors_and_logs_hide_the_password(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StorageError) as raised:
        await open_storage(url)
    assert PASSWORD not in _everything_said(raised.value)
    assert PASSWORD not in caplog.text


def test_the_upgrade_command_hides_the_password() -> None:
    with pytest.raises(StorageError) as raised:
        upgrade(f"postgresql+asyncpg://troupe:{PASSWORD}@127.0.0.1:1/troupe")
    assert PASSWORD not in _everything_said(raised.value)
    assert "***" in str(raised.value)
