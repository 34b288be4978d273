"""Alembic environment for Troupe: SQLite or PostgreSQL, the whole upgrade in one transaction.

Two ways in:

* from code (``bot.storage.migrate``): the caller passes an open connection in
  ``config.attributes["connection"]`` and holds the migration lock;
* from the ``alembic`` command line (e.g. ``alembic revision --autogenerate``): the database
  is ``DATABASE_URL``, or the default SQLite file.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from bot.settings import Settings
from bot.storage.database import open_database, parse_url
from bot.storage.migrate import context_options

config = context.config

# Only the command line has an alembic.ini; called from code, the app's logging stays as it is.
if config.config_file_name is not None:
    fileConfig(config.config_file_name)


def database_url() -> str:
    """``DATABASE_URL``, or the default SQLite file."""
    return Settings.from_environ(os.environ).storage.database_url


def run_migrations(connection: Connection) -> None:
    """Run the requested Alembic command on ``connection``."""
    context.configure(connection=connection, **context_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


async def run_from_command_line() -> None:
    """Connect to ``DATABASE_URL`` and run the command there."""
    database = open_database(parse_url(database_url()), foreign_keys=False)
    try:
        await database.write(run_migrations)
    finally:
        await database.dispose()


def run_offline() -> None:
    """``alembic upgrade --sql``: print the SQL instead of running it."""
    url = parse_url(database_url())
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **context_options(url.get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
elif (given := config.attributes.get("connection")) is not None:
    run_migrations(given)
else:
    asyncio.run(run_from_command_line())
