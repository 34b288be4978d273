"""Failures of the storage layer; callers catch these, never database driver errors."""

from __future__ import annotations

from bot.errors import TroupeError


class StorageError(TroupeError):
    """The database could not be reached or refused an operation.

    The message never contains the database URL's password; the driver's own error (for
    operators) is chained as ``__cause__``.
    """


class SchemaOutOfDate(StorageError):
    """The database is not migrated to the schema this code expects (run ``troupe db upgrade``)."""


class ConversationNotFound(StorageError, LookupError):
    """No conversation has the given id."""
