"""Running the Alembic migrations in ``migrations/`` from code.

Only one process migrates at a time: on PostgreSQL behind an advisory lock, on SQLite behind
``BEGIN IMMEDIATE``. Both are held for the whole upgrade, which runs in one transaction (both
backends have transactional DDL), so a failed migration leaves the schema as it was.
"""

from __future__ import annotations

import asyncio
import zlib
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection

from bot.storage.columns import CleanText, UTCDateTime
from bot.storage.database import Database, open_database, parse_url, redacted
from bot.storage.errors import SchemaOutOfDate, StorageError
from bot.storage.models import Base

#: The ``migrations/`` folder at the top of the repository.
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"

# Any fixed 64-bit number; every Troupe process uses the same one.
_PG_MIGRATION_LOCK = zlib.crc32(b"troupe.migrations")


def alembic_config() -> Config:
    """An Alembic configuration pointing at :data:`MIGRATIONS_DIR` (no ``alembic.ini`` needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def context_options(dialect_name: str) -> dict[str, Any]:
    """The options ``migrations/env.py`` gives Alembic's migration context.

    The schema comparison test uses the same ones, so what it checks is what autogenerate sees.
    """
    return {
        "target_metadata": Base.metadata,
        # SQLite alters most things by copying the table; batch mode does that for us.
        "render_as_batch": dialect_name == "sqlite",
        # SQLite's DDL is transactional too, and every upgrade runs inside one transaction.
        "transactional_ddl": True,
        "compare_type": True,
        "render_item": _render_item,
    }


def _render_item(kind: str, obj: Any, _context: object) -> str | bool:
    # Migrations spell out plain SQLAlchemy types, so they never import application code
    # that may change after they were written.
    if kind == "type" and isinstance(obj, CleanText):
        return "sa.Text()"
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def upgrade(database_url: str) -> None:
    """Migrate the database at ``database_url`` to the newest schema (``alembic upgrade head``).

    A blocking call for the command line; async code uses ``open_storage(migrate=True)``.
    A SQLite file (and its folder) is created if missing.
    """
    asyncio.run(migrate_url(parse_url(database_url)))


async def migrate_url(url: URL) -> None:
    """Migrate the database at ``url`` to the newest schema, on a connection of its own.

    On SQLite, foreign keys are not enforced while migrating (see :func:`open_database`);
    the result is checked with ``PRAGMA foreign_key_check`` instead.
    """
    database = open_database(url, foreign_keys=False)
    try:
        await database.write(_upgrade_head)
    finally:
        await database.dispose()


def _upgrade_head(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise StorageError(f"migration left {len(broken)} broken foreign key(s): {broken[:5]}")


async def check_schema(database: Database) -> None:
    """Raise :class:`SchemaOutOfDate` unless the database is at the newest migration."""
    current = await database.read(
        lambda connection: set(MigrationContext.configure(connection).get_current_heads())
    )
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    if current != heads:
        found = ", ".join(sorted(current)) or "no schema"
        raise SchemaOutOfDate(
            f"the database at {redacted(database.url)} has {found}, this code needs "
            f"{', '.join(sorted(heads))}; run `troupe db upgrade`"
        )
