"""Prebuilt statements run straight on ``sqlite3`` exactly as they run through SQLAlchemy."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Integer,
    MetaData,
    Table,
    bindparam,
    create_engine,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import StatementError

from bot.storage.columns import CleanText, UTCDateTime
from bot.storage.statements import ConnectionStatements, SQLiteStatements, Statements

metadata = MetaData()
notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner", CleanText),
    Column("text", CleanText),
    Column("at", UTCDateTime),
    Column("pinned", Boolean),
    Column("data", JSON, nullable=True),
    Column("hidden", Boolean, default=False),
)
COLUMNS = [notes.c.id, notes.c.owner, notes.c.text, notes.c.at, notes.c.pinned, notes.c.data]
INSERT = insert(notes).returning(*COLUMNS)
BY_OWNER = (
    select(*COLUMNS)
    .where(notes.c.owner == bindparam("who"), notes.c.at >= bindparam("since"))
    .order_by(notes.c.id.desc())
    .limit(bindparam("limit"))
)
PIN = update(notes).where(notes.c.owner == bindparam("who"))
FORGET = delete(notes).where(notes.c.owner == bindparam("who"))

NOON = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ROWS = [
    {"owner": "sam", "text": "plain", "at": NOON, "pinned": True, "data": {"a": [1, 2]}},
    # Stored as U+FFFD, found again by the same raw string.
    {"owner": "s\x00m", "text": "nul \x00 inside", "at": NOON, "pinned": False, "data": None},
    {
        "owner": "sam",
        "text": "in Paris",
        "at": NOON.astimezone(timezone(timedelta(hours=1))) + timedelta(minutes=5),
        "pinned": False,
        "data": ["x"],
    },
]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """Two empty SQLite files with the ``notes`` table."""
    paths = (tmp_path / "through-sqlalchemy.sqlite3", tmp_path / "straight.sqlite3")
    for path in paths:
        engine = create_engine(f"sqlite:///{path}")
        metadata.create_all(engine)
        engine.dispose()
    return paths


def run_everything(statements: Statements) -> list[Any]:
    """Every kind of statement, with what each returned."""
    seen: list[Any] = [statements.rows(INSERT, {**row, "hidden": False}) for row in ROWS]
    for who in ("sam", "s\x00m", "nobody"):
        seen.append(statements.rows(BY_OWNER, {"who": who, "since": NOON, "limit": 5}))
    seen.append(statements.rows(BY_OWNER, {"who": "sam", "since": NOON, "limit": 1}))
    seen.append(statements.touched(PIN, {"who": "sam", "pinned": True}))
    seen.append(statements.rows(BY_OWNER, {"who": "sam", "since": NOON, "limit": 5}))
    seen.append(statements.touched(FORGET, {"who": "s\x00m"}))
    seen.append(statements.rows(select(notes.c.owner), {}))
    return [[tuple(row) for row in rows] if isinstance(rows, list) else rows for rows in seen]


def test_each_statement_gives_what_sqlalchemy_gives(files: tuple[Path, Path]) -> None:
    through, straight = files
    engine = create_engine(f"sqlite:///{through}")
    connection: Connection
    with engine.begin() as connection:
        expected = run_everything(ConnectionStatements(connection))
    engine.dispose()
    with closing(sqlite3.connect(straight)) as raw:
        got = run_everything(SQLiteStatements(raw))

    assert got == expected
    # The conversions happened, not just the same raw values on both sides.
    first = got[0][0]
    assert first[3] == NOON
    assert first[3].tzinfo is UTC
    assert first[4] is True
    assert first[5] == {"a": [1, 2]}
    assert got[1][0][1:3] == ("s\ufffdm", "nul \ufffd inside")
    assert [row[2] for row in got[3]] == ["in Paris", "plain"]
    assert got[7] == 2  # rows pinned


def test_a_refused_value_raises_as_through_sqlalchemy(files: tuple[Path, Path]) -> None:
    naive = {"who": "sam", "since": datetime(2026, 1, 1), "limit": 5}
    refused = pytest.raises(StatementError, match="naive datetime")
    with closing(sqlite3.connect(files[1])) as raw, refused:
        SQLiteStatements(raw).rows(BY_OWNER, naive)


def test_a_column_default_computed_in_python_must_be_passed(files: tuple[Path, Path]) -> None:
    # SQLAlchemy would fill in ``hidden``; run straight, it would silently be NULL.
    with closing(sqlite3.connect(files[1])) as raw, pytest.raises(TypeError, match="hidden"):
        SQLiteStatements(raw).rows(INSERT, ROWS[0])
