"""Storage: conversations, messages, usage, moderation events and personas (SQLAlchemy async).

SQLite (a file, WAL mode) by default, PostgreSQL at scale; the schema is managed by the
Alembic migrations in ``migrations/``. Open it with :func:`open_storage`; everything that goes
in or comes out is a plain frozen record from :mod:`bot.storage.records`.
"""

from bot.settings import DEFAULT_DATABASE_URL
from bot.storage.errors import ConversationNotFound, SchemaOutOfDate, StorageError
from bot.storage.migrate import upgrade
from bot.storage.records import (
    Conversation,
    Delivery,
    Direction,
    ForgetReport,
    MessageRole,
    ModelCall,
    ModerationEvent,
    NewMessage,
    NewModerationEvent,
    OwedTurn,
    StoredMessage,
    TurnContext,
    UsageTotals,
    WindowMessage,
)
from bot.storage.storage import SettingsScope, Storage, open_storage

__all__ = [
    "DEFAULT_DATABASE_URL",
    "Conversation",
    "ConversationNotFound",
    "Delivery",
    "Direction",
    "ForgetReport",
    "MessageRole",
    "ModelCall",
    "ModerationEvent",
    "NewMessage",
    "NewModerationEvent",
    "OwedTurn",
    "SchemaOutOfDate",
    "SettingsScope",
    "Storage",
    "StorageError",
    "StoredMessage",
    "TurnContext",
    "UsageTotals",
    "WindowMessage",
    "open_storage",
    "upgrade",
]
