"""Migrations: they build exactly the models' schema, run once, undo cleanly, and gate startup."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata, produce_migrations, render_python_code
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Connection, Integer, MetaData, inspect

from bot.storage import SchemaOutOfDate, open_storage, upgrade
from bot.storage.database import open_database, parse_url
from bot.storage.migrate import alembic_config, context_options, migrate_url
from bot.storage.models import Base

REPO = Path(__file__).resolve().parents[2]
TABLES = {
    "conversation_memories",
    "conversations",
    "message_parts",
    "messages",
    "model_calls",
    "moderation_events",
    "reply_alternatives",
    "nudges",
    "settings",
    "turn_claims",
    "user_facts",
    "user_personas",
}


async def _on(database_url: str, work: Any) -> Any:
    """Run ``work(connection)`` in one transaction on ``database_url``."""
    database = open_database(parse_url(database_url))
    try:
        return await database.write(work)
    finally:
        await database.dispose()


def _schema_diff(metadata: MetaData) -> Any:
    def diff(connection: Connection) -> list[Any]:
        options = context_options(connection.dialect.name)
        context = MigrationContext.configure(connection, opts=options)
        return list(compare_metadata(context, metadata))

    return diff


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_models_and_migrations_never_drift(database_url: str) -> None:
    await migrate_url(parse_url(database_url))
    assert await _on(database_url, _schema_diff(Base.metadata)) == []


async def test_the_drift_check_sees_a_model_change(database_url: str) -> None:
    # The comparison above must be able to fail: a column the migrations lack is reported.
    await migrate_url(parse_url(database_url))
    changed = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["messages"].append_column(Column("mood", Integer, nullable=True))

    diff = await _on(database_url, _schema_diff(changed))
    assert [(op[0], op[2], op[3].name) for op in diff] == [("add_column", "messages", "mood")]


async def test_open_storage_migrates_once_and_is_idempotent(database_url: str) -> None:
    for _ in range(2):
        storage = await open_storage(database_url)
        await storage.close()

    def state(connection: Connection) -> tuple[set[str], list[str]]:
        heads = list(MigrationContext.configure(connection).get_current_heads())
        return _tables(connection), heads

    tables, heads = await _on(database_url, state)
    assert tables == TABLES | {"alembic_version"}
    assert heads == ["0006_memory"]


async def test_concurrent_migrations_run_one_at_a_time(database_url: str) -> None:
    url = parse_url(database_url)
    await asyncio.gather(*(migrate_url(url) for _ in range(4)))
    assert await _on(database_url, _schema_diff(Base.metadata)) == []


async def test_downgrade_to_nothing_and_back(database_url: str) -> None:
    await migrate_url(parse_url(database_url))

    def downgrade(connection: Connection) -> set[str]:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
        return _tables(connection)

    assert await _on(database_url, downgrade) == {"alembic_version"}
    await migrate_url(parse_url(database_url))
    assert await _on(database_url, _schema_diff(Base.metadata)) == []


async def test_without_migrate_an_old_schema_is_refused(database_url: str) -> None:
    with pytest.raises(SchemaOutOfDate, match="troupe db upgrade"):
        await open_storage(database_url, migrate=False)

    await asyncio.to_thread(upgrade, database_url)  # the blocking entry of `troupe db upgrade`

    storage = await open_storage(database_url, migrate=False)
    try:
        conversation = await storage.conversation("discord", "c", default_character="aria")
        assert conversation.character_id == "aria"
    finally:
        await storage.close()


def test_upgrade_creates_the_sqlite_folder(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "troupe.sqlite3"
    upgrade(f"sqlite:///{target}")
    assert target.is_file()


def test_alembic_command_line_sees_no_pending_model_changes(tmp_path: Path) -> None:
    # `alembic check` runs env.py's command-line path against DATABASE_URL and fails if
    # autogenerate would write a migration.
    database = tmp_path / "cli.sqlite3"
    upgrade(f"sqlite:///{database}")
    environment = {**os.environ, "DATABASE_URL": f"sqlite:///{database}"}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "check"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr


async def test_autogenerate_writes_plain_sqlalchemy_types(sqlite_url: str) -> None:
    # Migrations must not import application types that may change after they were written.
    def render(connection: Connection) -> str:
        options = context_options(connection.dialect.name)
        context = MigrationContext.configure(connection, opts=options)
        script = produce_migrations(context, Base.metadata)
        assert script.upgrade_ops is not None
        return render_python_code(script.upgrade_ops, render_item=options["render_item"])

    code = await _on(sqlite_url, render)
    assert "op.create_table('messages'" in code
    assert "sa.Column('created_at', sa.DateTime(timezone=True), nullable=False)" in code
    assert "sa.Column('text', sa.Text(), nullable=False)" in code
    assert "bot." not in code
