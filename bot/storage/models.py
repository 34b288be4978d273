"""The tables, as SQLAlchemy 2 declarative models.

The migrations in ``migrations/versions`` create exactly this schema; a test compares the two.
Change a model, then generate a migration (see the README) — never one without the other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.storage.columns import BigID, CleanText, UTCDateTime

# Deterministic constraint names, so migrations (and SQLite batch rebuilds) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """The declarative base; ``Base.metadata`` is the schema Alembic compares against."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ConversationRow(Base):
    """A conversation: ``(platform, chat_id, thread_id)`` is its key."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("platform", "chat_id", "thread_id"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    platform: Mapped[str] = mapped_column(CleanText)
    chat_id: Mapped[str] = mapped_column(CleanText)
    thread_id: Mapped[str] = mapped_column(CleanText, default="")
    character_id: Mapped[str] = mapped_column(CleanText)
    #: Extra characters sharing the scene with the main one (a JSON list of ids), if any.
    scene: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The Discord server (guild) or Telegram group the chat belongs to; NULL for DMs.
    server_id: Mapped[str | None] = mapped_column(CleanText, nullable=True)


class MessageRow(Base):
    """One message of a conversation, from a human or from a character."""

    __tablename__ = "messages"
    __table_args__: tuple[Any, ...] = (
        CheckConstraint("role IN ('user', 'assistant')", name="role"),
        CheckConstraint("delivery IN ('pending', 'delivered', 'undelivered')", name="delivery"),
        # The history window: equality on the first three columns, then newest first by id.
        # The window query reads ``limit`` index entries whatever the table's size.
        Index(None, "conversation_id", "input_flagged", "delivery", "id"),
        Index(None, "conversation_id", "platform_message_id"),
        Index(None, "author_id"),
        # AUTOINCREMENT: ids of deleted messages are never handed out again.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("conversations.id", ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[str] = mapped_column(CleanText)
    author_name: Mapped[str] = mapped_column(CleanText)
    text: Mapped[str] = mapped_column(CleanText)
    character_id: Mapped[str | None] = mapped_column(CleanText, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    token_estimate: Mapped[int | None] = mapped_column(Integer, nullable=True)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    input_flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    input_sensitive_type: Mapped[int] = mapped_column(Integer, default=0)
    platform_message_id: Mapped[str | None] = mapped_column(CleanText, nullable=True)
    edited: Mapped[bool] = mapped_column(Boolean, default=False)
    #: For a reply: the newest message it answered. Messages that arrived while it was being
    #: written have smaller ids than the reply but come after it in the conversation.
    reply_to_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: How far the message reached the chat: a human's is there (``delivered``); a reply is
    #: ``pending`` until the platform took it, then ``delivered`` or ``undelivered``. Only
    #: delivered messages go into prompts.
    delivery: Mapped[str] = mapped_column(
        String(16), default="delivered", server_default="delivered"
    )


class MessagePartRow(Base):
    """The platform message of a reply's second, third… part (a reply longer than the
    platform's limit is shown in several); the first is the message's ``platform_message_id``.
    """

    __tablename__ = "message_parts"
    __table_args__ = (
        # "Which message is shown as this platform message?" for a reply to a later part.
        Index(None, "conversation_id", "platform_message_id"),
    )

    message_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    #: 1 for the second part, 2 for the third…
    part: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("conversations.id", ondelete="CASCADE")
    )
    platform_message_id: Mapped[str] = mapped_column(CleanText)


class ModelCallRow(Base):
    """One call to the model, for usage accounting."""

    __tablename__ = "model_calls"
    __table_args__ = (
        Index(None, "conversation_id"),
        Index(None, "author_id"),
        # Deleting a message nulls references to it; without this index, a full scan each.
        Index(None, "reply_message_id"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("conversations.id", ondelete="CASCADE")
    )
    author_id: Mapped[str] = mapped_column(CleanText)
    character_id: Mapped[str] = mapped_column(CleanText)
    model: Mapped[str] = mapped_column(CleanText)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    total_tokens: Mapped[int] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean)
    error_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    trace_id: Mapped[str | None] = mapped_column(CleanText, nullable=True)
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reply_message_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("messages.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The reply ran far past ``max_completion_tokens`` and was cut while streaming (its
    #: usage is then estimated: the stream's own report was never read).
    cut: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: What the call was for: ``reply`` (answering people), ``nudge`` (a character
    #: speaking first) or ``memory`` (updating a conversation's memory); ``/usage`` shows
    #: them apart.
    kind: Mapped[str] = mapped_column(String(16), default="reply", server_default="reply")


class ModerationEventRow(Base):
    """A sensitive flag the model raised, on a user's input or on a reply."""

    __tablename__ = "moderation_events"
    __table_args__ = (
        CheckConstraint("direction IN ('input', 'output')", name="direction"),
        # Cool-down policy: how often did this user get flagged lately?
        Index(None, "platform", "author_id", "created_at"),
        Index(None, "platform", "chat_id", "created_at"),
        Index(None, "message_id"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("conversations.id", ondelete="CASCADE")
    )
    platform: Mapped[str] = mapped_column(CleanText)
    chat_id: Mapped[str] = mapped_column(CleanText)
    author_id: Mapped[str] = mapped_column(CleanText)
    direction: Mapped[str] = mapped_column(String(16))
    sensitive_type: Mapped[int] = mapped_column(Integer)
    type_name: Mapped[str] = mapped_column(CleanText)
    message_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("messages.id", ondelete="SET NULL"), nullable=True
    )
    trace_id: Mapped[str | None] = mapped_column(CleanText, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UserPersonaRow(Base):
    """Who a user is in the story, as they described themselves; one per platform user."""

    __tablename__ = "user_personas"

    platform: Mapped[str] = mapped_column(CleanText, primary_key=True)
    user_id: Mapped[str] = mapped_column(CleanText, primary_key=True)
    persona: Mapped[str] = mapped_column(CleanText)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SettingsRow(Base):
    """Settings an admin chose for one chat or one server, as a JSON object."""

    __tablename__ = "settings"
    __table_args__ = (CheckConstraint("scope IN ('chat', 'server')", name="scope"),)

    platform: Mapped[str] = mapped_column(CleanText, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    scope_id: Mapped[str] = mapped_column(CleanText, primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TurnClaimRow(Base):
    """A conversation's turns: which messages are owed one, and who is running it.

    ``wanted_through`` is the newest message the trigger policy decided to answer;
    ``answered_through`` the newest message a finished turn answered (whatever its outcome),
    so a process never answers again what another one already did. A conversation whose
    ``wanted_through`` is ahead is owed a turn, also after a crash or a restart.

    When processes share the database, a claim is a lease on running the turn: a process
    that dies mid-turn loses it when ``expires_at`` passes.
    """

    __tablename__ = "turn_claims"

    conversation_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    owner: Mapped[str | None] = mapped_column(CleanText, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answered_through: Mapped[int] = mapped_column(BigInteger, default=0)
    wanted_through: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class ReplyAlternativeRow(Base):
    """One alternative of a character's message (a regenerated reply, or another greeting).

    A message without rows here has one alternative: its own text. The row ``shown`` is the
    one whose text the message holds, so history (and every later prompt) sees it alone.
    """

    __tablename__ = "reply_alternatives"

    message_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    #: 0 for the first alternative, 1 for the second…
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(CleanText)
    shown: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NudgeRow(Base):
    """Whether and when characters speak first in one conversation, and what they did so far.

    The settings are an admin's (a channel) or the user's (a private chat, ``enabled`` only
    after they opted in); ``NULL`` settings follow the ``TROUPE_NUDGE_*`` defaults. The
    state (``last_nudge_at``, ``sent_today`` on ``day``, ``last_greeting_at``) is what the
    scheduler derives its next due times from, so the schedule survives restarts; it is
    updated by a compare-and-set, so one process sends each nudge.
    """

    __tablename__ = "nudges"

    conversation_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Minutes without a message before a character may open a topic.
    quiet_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: ``HH:MM-HH:MM`` local time in which no character speaks first ("" for none).
    quiet_hours: Mapped[str | None] = mapped_column(CleanText, nullable=True)
    #: An IANA time zone name (``Europe/Berlin``) for the quiet hours, days and schedule.
    timezone: Mapped[str | None] = mapped_column(CleanText, nullable=True)
    max_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: A 5-field cron expression for scheduled greetings ("" or NULL: none).
    schedule: Mapped[str | None] = mapped_column(CleanText, nullable=True)
    #: The user of a private chat who opted in (erased with them).
    user_id: Mapped[str | None] = mapped_column(CleanText, nullable=True)
    #: When the platform said the chat refuses the bot (blocked, DMs closed): no more nudges
    #: until someone turns them on again.
    blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_nudge_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The scheduled time of the last greeting handled (sent, or skipped as not allowed).
    last_greeting_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The local date (``YYYY-MM-DD``) ``sent_today`` counts for.
    day: Mapped[str | None] = mapped_column(CleanText, nullable=True)
    sent_today: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConversationMemoryRow(Base):
    """A conversation's rolling summary of the messages that fell out of its window.

    ``covered_through`` is the newest message id the summary covers: later updates fold in
    only messages after it, and an update is stored only if it still is what the update
    started from (so two processes never both write one).
    """

    __tablename__ = "conversation_memories"

    conversation_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    summary: Mapped[str] = mapped_column(CleanText)
    covered_through: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UserFactRow(Base):
    """Something a user stated about themselves, remembered by one character.

    Learned in ``conversation_id``; ``shared`` facts (where the owner allows sharing) also
    reach that user's other conversations with the character that allow it.
    """

    __tablename__ = "user_facts"
    __table_args__ = (
        Index(None, "platform", "user_id", "character_id"),
        Index(None, "conversation_id"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    platform: Mapped[str] = mapped_column(CleanText)
    user_id: Mapped[str] = mapped_column(CleanText)
    character_id: Mapped[str] = mapped_column(CleanText)
    conversation_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("conversations.id", ondelete="CASCADE")
    )
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    text: Mapped[str] = mapped_column(CleanText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
