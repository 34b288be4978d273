"""Column types that behave the same on SQLite and PostgreSQL.

SQLite keeps no time zone and accepts text PostgreSQL rejects; these types smooth both over at
the boundary, so the rest of the storage code never has to think about the dialect.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Dialect, Integer, Text
from sqlalchemy.types import TypeDecorator

#: Primary keys: 64-bit on PostgreSQL, ``INTEGER PRIMARY KEY`` (the rowid) on SQLite.
BigID = BigInteger().with_variant(Integer(), "sqlite")

# NUL is refused by PostgreSQL text; lone surrogates cannot be encoded as UTF-8 by either driver.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: str) -> str:
    """``value`` with characters no database can store (NUL, lone surrogates) replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", value)


class CleanText(TypeDecorator[str]):
    """``TEXT`` that accepts any Python string: unstorable characters become U+FFFD.

    Applied on the way in (values and comparisons alike), so a lookup with the same raw
    string finds what was stored.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else storable_text(value)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    Naive datetimes are refused on the way in (their zone is a guess); on the way out,
    SQLite's naive values are marked as the UTC they were stored as.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused; pass an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
