"""Storage: conversations, messages, usage, moderation events, personas, settings and turn
claims, on SQLite or PostgreSQL through SQLAlchemy's async engine (``aiosqlite``, ``asyncpg``).

SQLite (a file, WAL mode) by default, PostgreSQL at scale; the schema is managed by the
Alembic migrations in ``migrations/``. Everything the rest of Troupe uses is named here:

* :func:`open_storage` connects (and migrates) and returns a :class:`Storage`, the one way in;
  :func:`upgrade` migrates from the command line.
* Everything that goes in or comes out of a :class:`Storage` is a plain frozen record
  (:class:`Conversation`, :class:`NewMessage`, :class:`StoredMessage`, …).
* Every failure is a :class:`StorageError` (:class:`ConversationNotFound`,
  :class:`SchemaOutOfDate`), never a driver's error; its text never holds a password.
* :func:`parse_url` checks a database URL and picks its driver; :func:`redacted` shows one
  without its password.

SQL stays inside this package. Its modules beyond these names (``models``, ``migrate``,
``database``) are for the migrations, and for benchmarks and tests that look beneath the API.
"""

from bot.settings import DEFAULT_DATABASE_URL
from bot.storage.database import parse_url, redacted
from bot.storage.errors import ConversationNotFound, SchemaOutOfDate, StorageError
from bot.storage.migrate import upgrade
from bot.storage.nudges import NudgePlan, NudgeSettings, NudgeState
from bot.storage.records import (
    Alternatives,
    CallKind,
    Conversation,
    ConversationMemory,
    Delivery,
    Direction,
    ForgetReport,
    MemoryScope,
    MemoryUpdateRecord,
    MessageRole,
    ModelCall,
    ModerationEvent,
    NewMessage,
    NewModerationEvent,
    OwedTurn,
    StoredMessage,
    TurnContext,
    UsageTotals,
    UserFact,
    WindowMessage,
)
from bot.storage.storage import SettingsScope, Storage, open_storage

__all__ = [
    "DEFAULT_DATABASE_URL",
    "Alternatives",
    "CallKind",
    "Conversation",
    "ConversationMemory",
    "ConversationNotFound",
    "Delivery",
    "Direction",
    "ForgetReport",
    "MemoryScope",
    "MemoryUpdateRecord",
    "MessageRole",
    "ModelCall",
    "ModerationEvent",
    "NewMessage",
    "NewModerationEvent",
    "NudgePlan",
    "NudgeSettings",
    "NudgeState",
    "OwedTurn",
    "SchemaOutOfDate",
    "SettingsScope",
    "Storage",
    "StorageError",
    "StoredMessage",
    "TurnContext",
    "UsageTotals",
    "UserFact",
    "WindowMessage",
    "open_storage",
    "parse_url",
    "redacted",
    "upgrade",
]
