"""The repository: every query Troupe makes, behind async methods that take and return records.

Each method runs one transaction through a :class:`~bot.storage.database.Database`, so the same
code serves SQLite (one process) and PostgreSQL (several processes: ``ON CONFLICT`` and
transactions keep concurrent writers apart). The statements on the path of every chat turn are
built once, at import, with bound parameters: building a statement costs more than running it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    Executable,
    Select,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from bot.storage.database import Database, open_database, parse_url, redacted
from bot.storage.errors import ConversationNotFound
from bot.storage.migrate import check_schema, migrate_url
from bot.storage.models import (
    Base,
    ConversationMemoryRow,
    ConversationRow,
    MessagePartRow,
    MessageRow,
    ModelCallRow,
    ModerationEventRow,
    NudgeRow,
    ReplyAlternativeRow,
    SettingsRow,
    TurnClaimRow,
    UserFactRow,
    UserPersonaRow,
)
from bot.storage.nudges import NudgeStore
from bot.storage.records import (
    Alternatives,
    CallKind,
    Conversation,
    ConversationMemory,
    ForgetReport,
    Memory,
    MemoryScope,
    MemoryUpdateRecord,
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

SettingsScope = Literal["chat", "server"]


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


_conversations = _table(ConversationRow)
_messages = _table(MessageRow)
_parts = _table(MessagePartRow)
_model_calls = _table(ModelCallRow)
_moderation_events = _table(ModerationEventRow)
_personas = _table(UserPersonaRow)
_settings = _table(SettingsRow)
_claims = _table(TurnClaimRow)
_alternatives = _table(ReplyAlternativeRow)
_nudges = _table(NudgeRow)
_memories = _table(ConversationMemoryRow)
_facts = _table(UserFactRow)


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _field_names(record: type[Any]) -> tuple[str, ...]:
    """The field names of a record type (a dataclass or a named tuple), looked up once."""
    names = _FIELD_NAMES.get(record)
    if names is None:
        fields = getattr(record, "_fields", None) or [f.name for f in dataclasses.fields(record)]
        names = _FIELD_NAMES[record] = tuple(fields)
    return names


def _columns(table: Table, record: type[Any]) -> list[Any]:
    """The table's columns named like the record's fields (a dataclass's or a named
    tuple's), in field order.

    Rows selected with these columns build their record positionally: ``Record(*row)``.
    """
    return [table.c[name] for name in _field_names(record)]


_CONVERSATION_COLUMNS = _columns(_conversations, Conversation)
_FACT_COLUMNS = _columns(_facts, UserFact)
_MESSAGE_COLUMNS = _columns(_messages, StoredMessage)
_MODERATION_COLUMNS = _columns(_moderation_events, ModerationEvent)

_FIND_CONVERSATION = select(*_CONVERSATION_COLUMNS).where(
    _conversations.c.platform == bindparam("platform"),
    _conversations.c.chat_id == bindparam("chat_id"),
    _conversations.c.thread_id == bindparam("thread_id"),
)
_GET_CONVERSATION = select(*_CONVERSATION_COLUMNS).where(
    _conversations.c.id == bindparam("conversation_id")
)
_INSERT_MESSAGE = insert(_messages).returning(*_MESSAGE_COLUMNS)
_GET_PERSONA = select(_personas.c.persona).where(
    _personas.c.platform == bindparam("platform"), _personas.c.user_id == bindparam("user_id")
)
_COUNT_FLAGS = select(func.count(_moderation_events.c.id)).where(
    _moderation_events.c.platform == bindparam("platform"),
    _moderation_events.c.author_id == bindparam("user_id"),
    _moderation_events.c.created_at >= bindparam("since"),
)
_INSERT_MODEL_CALL = insert(_model_calls)
# Turns owed: parameter names differ from the columns (see _UPDATE_MESSAGE below).
_MARK_ANSWERED = (
    update(_claims)
    .where(_claims.c.conversation_id == bindparam("in_conversation"))
    .values(
        answered_through=case(
            (_claims.c.answered_through < bindparam("through"), bindparam("through")),
            else_=_claims.c.answered_through,
        )
    )
)
_ANSWERED_THROUGH = select(_claims.c.answered_through).where(
    _claims.c.conversation_id == bindparam("in_conversation")
)
# Memory, read by every turn: built once, like the other statements on the turn's path.
_GET_SUMMARY = select(_memories.c.summary, _memories.c.covered_through).where(
    _memories.c.conversation_id == bindparam("in_conversation")
)
_FACTS_OF_CHARACTER = (
    _facts.c.platform == bindparam("platform"),
    _facts.c.character_id == bindparam("character_id"),
)
_FACTS_HERE = (
    select(*_FACT_COLUMNS)
    .where(*_FACTS_OF_CHARACTER, _facts.c.conversation_id == bindparam("in_conversation"))
    .order_by(_facts.c.id)
)
#: With sharing: also the shared facts, learned elsewhere, of people who spoke here.
_SHARED_FACTS = (
    select(*_FACT_COLUMNS)
    .where(
        *_FACTS_OF_CHARACTER,
        (_facts.c.conversation_id == bindparam("in_conversation"))
        | (
            _facts.c.shared.is_(True)
            & _facts.c.user_id.in_(
                select(_messages.c.author_id).where(
                    _messages.c.conversation_id == bindparam("in_conversation")
                )
            )
        ),
    )
    .order_by(_facts.c.id)
)
#: The PostgreSQL notification channel on which a released turn claim is announced.
TURN_RELEASED = "troupe_turn_released"


def _window_query(columns: list[Any]) -> Select[Any]:
    """The newest messages of a conversation that may go into a prompt, newest first."""
    return (
        select(*columns)
        .where(
            _messages.c.conversation_id == bindparam("conversation_id"),
            _messages.c.input_flagged.is_(False),
            # A reply the chat never showed was not said. A constant, not a parameter: the
            # plan (and the index it uses) is fixed whatever the values.
            _messages.c.delivery == literal_column("'delivered'"),
        )
        .order_by(_messages.c.id.desc())
        .limit(bindparam("limit"))
    )


#: The query behind :meth:`Storage.history_window` (public so tests can ``EXPLAIN`` it).
HISTORY_WINDOW_QUERY = _window_query(_MESSAGE_COLUMNS)
#: The window of :data:`HISTORY_WINDOW_QUERY` for a turn: the columns of :class:`WindowMessage`
#: only (the others' conversions took as long as the query).
_TURN_WINDOW = _window_query(_columns(_messages, WindowMessage)).subquery()
_TURN_USER = select(
    _GET_PERSONA.scalar_subquery().label("persona"),
    _COUNT_FLAGS.scalar_subquery().label("recent_flags"),
).subquery()
#: Everything a turn reads, in one statement (each statement costs several trips to the
#: driver's thread): a row per window message, each led by the author's persona and flag
#: count; a single row with no message when the window is empty.
_TURN_CONTEXT_QUERY = select(_TURN_USER, _TURN_WINDOW).select_from(
    _TURN_USER.outerjoin(_TURN_WINDOW, true())
)
# Parameter names differ from the columns': an UPDATE takes its SET clause from the columns
# named in its parameters.
_UPDATE_MESSAGE = update(_messages).where(_messages.c.id == bindparam("message_id"))
_BY_PLATFORM_ID = and_(
    _messages.c.conversation_id == bindparam("in_conversation"),
    _messages.c.platform_message_id == bindparam("shown_as"),
)
_UPDATE_BY_PLATFORM_ID = update(_messages).where(_BY_PLATFORM_ID)
_DELETE_BY_PLATFORM_ID = delete(_messages).where(_BY_PLATFORM_ID)
_FIND_BY_PLATFORM_ID = (
    select(*_MESSAGE_COLUMNS).where(_BY_PLATFORM_ID).order_by(_messages.c.id.desc()).limit(1)
)
#: The reply one of whose later parts is shown as ``shown_as``.
_FIND_BY_PART_ID = (
    select(*_MESSAGE_COLUMNS)
    .join(_parts, _parts.c.message_id == _messages.c.id)
    .where(
        _parts.c.conversation_id == bindparam("in_conversation"),
        _parts.c.platform_message_id == bindparam("shown_as"),
    )
    .order_by(_messages.c.id.desc())
    .limit(1)
)
_INSERT_PART = insert(_parts)
_INSERT_ALTERNATIVES = insert(_alternatives)
_GET_SETTINGS = select(_settings.c.data).where(
    _settings.c.platform == bindparam("platform"),
    _settings.c.scope == bindparam("scope"),
    _settings.c.scope_id == bindparam("scope_id"),
)


def _now() -> datetime:
    return datetime.now(UTC)


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


class Storage:
    """Conversations, messages, usage, moderation events and personas in one database.

    Create it with :func:`open_storage`; close it with :meth:`close`. Safe to share between
    any number of concurrent tasks. Every method raises
    :class:`~bot.storage.errors.StorageError` (never a driver error) when the database fails.
    A method is one transaction: it happens entirely or not at all. Cancelling the calling
    task does not cancel a transaction already under way; it completes, unobserved.
    """

    def __init__(self, database: Database) -> None:
        self._database = database
        self._dialect_insert: Callable[[Table], Any] = (
            postgresql.insert if database.dialect_name == "postgresql" else sqlite.insert
        )
        #: Characters that speak first: each conversation's nudge settings and state.
        self.nudges = NudgeStore(database, self._dialect_insert)
        # Built once, like the module's statements: the values come as parameters.
        self._create_conversation = self._dialect_insert(_conversations).on_conflict_do_nothing(
            index_elements=["platform", "chat_id", "thread_id"]
        )
        want = self._dialect_insert(_claims).values(
            conversation_id=bindparam("in_conversation"),
            owner=None,
            expires_at=None,
            answered_through=0,
            wanted_through=bindparam("through"),
        )
        self._want_turn = want.on_conflict_do_update(
            index_elements=["conversation_id"],
            set_={
                "wanted_through": case(
                    (
                        _claims.c.wanted_through < want.excluded.wanted_through,
                        want.excluded.wanted_through,
                    ),
                    else_=_claims.c.wanted_through,
                )
            },
        )

    def __repr__(self) -> str:
        return f"Storage({redacted(self._database.url)!r})"

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._database.dialect_name

    async def ping(self) -> bool:
        """Whether the database answers (for health checks); raises :class:`StorageError`."""
        await self._database.read(lambda connection: connection.exec_driver_sql("SELECT 1").all())
        return True

    async def close(self) -> None:
        """Finish queued writes and close every database connection."""
        await self._database.dispose()

    async def _execute(self, statement: Executable, params: Mapping[str, Any] | None = None) -> int:
        """Run one writing statement; returns how many rows it touched."""
        return await self._database.write(
            lambda connection: _rowcount(connection.execute(statement, params))
        )

    # -- conversations ---------------------------------------------------------------------

    async def conversation(
        self,
        platform: str,
        chat_id: str,
        thread_id: str = "",
        *,
        default_character: str,
        default_scene: Sequence[str] = (),
        server_id: str | None = None,
    ) -> Conversation:
        """The conversation with this key, created bound to ``default_character`` (and
        ``default_scene``) if new.

        ``server_id`` (the guild or group) is recorded when the conversation is created.
        Safe against concurrent creation, in this process or another: every caller gets
        the same conversation.
        """
        key = {"platform": platform, "chat_id": chat_id, "thread_id": thread_id}
        row: Sequence[Any] | None = await self._database.read(
            lambda connection: connection.execute(_FIND_CONVERSATION, key).first()
        )
        if row is None:
            new = {
                **key,
                "character_id": default_character,
                "scene": list(default_scene) or None,
                "server_id": server_id,
                "created_at": _now(),
            }

            def create_or_find(connection: Connection) -> Sequence[Any]:
                connection.execute(self._create_conversation, new)
                return connection.execute(_FIND_CONVERSATION, key).one()

            row = await self._database.write(create_or_find)
        return _conversation(row)

    async def bind_character(self, conversation_id: int, character_id: str) -> None:
        """Make ``character_id`` the conversation's main character."""
        await self._update_conversation(conversation_id, character_id=character_id)

    async def set_scene(self, conversation_id: int, character_ids: Sequence[str]) -> None:
        """Set the extra characters of the conversation's scene; an empty list clears it."""
        await self._update_conversation(conversation_id, scene=list(character_ids) or None)

    async def _update_conversation(self, conversation_id: int, **values: Any) -> None:
        statement = (
            update(_conversations).where(_conversations.c.id == conversation_id).values(**values)
        )
        if await self._execute(statement) == 0:
            raise ConversationNotFound(f"no conversation with id {conversation_id}")

    # -- messages --------------------------------------------------------------------------

    async def add_message(self, message: NewMessage, *, owed: bool = False) -> StoredMessage:
        """Store a message and return it as stored; with ``owed``, in the same transaction,
        note that a turn is owed for the conversation's messages up to it: it stays owed (see
        :meth:`owed_turns`) until :meth:`mark_answered` or a released claim says a turn
        answered them."""
        params = _new_message_params(message)

        def store(connection: Connection) -> StoredMessage:
            stored = StoredMessage(*connection.execute(_INSERT_MESSAGE, params).one())
            if owed:
                wanted = {"in_conversation": stored.conversation_id, "through": stored.id}
                connection.execute(self._want_turn, wanted)
            return stored

        return await self._database.write(store)

    async def add_reply(self, message: NewMessage, call: ModelCall) -> StoredMessage:
        """Store a character's reply and the model call that produced it, in one transaction.

        The message gets the call's prompt and completion tokens; the stored call's
        ``reply_message_id`` is the new message.
        """
        params = _new_message_params(message)
        params.update(prompt_tokens=call.prompt_tokens, completion_tokens=call.completion_tokens)
        call_params = _model_call_params(call)

        def store(connection: Connection) -> StoredMessage:
            message = StoredMessage(*connection.execute(_INSERT_MESSAGE, params).one())
            connection.execute(_INSERT_MODEL_CALL, {**call_params, "reply_message_id": message.id})
            return message

        return await self._database.write(store)

    async def history_window(self, conversation_id: int, limit: int) -> list[StoredMessage]:
        """The newest ``limit`` messages that may go into a prompt, oldest first.

        Messages flagged as sensitive input are left out. Served by an index: the cost
        depends on ``limit``, not on how many messages are stored.
        """
        if limit <= 0:
            return []
        params = {"conversation_id": conversation_id, "limit": limit}
        rows = await self._database.read(
            lambda connection: connection.execute(HISTORY_WINDOW_QUERY, params).all()
        )
        return _in_conversation_order([StoredMessage(*row) for row in rows])

    async def turn_context(
        self,
        conversation_id: int,
        *,
        limit: int,
        platform: str,
        author_id: str,
        flags_since: datetime,
        memory: MemoryScope | None = None,
    ) -> TurnContext:
        """Everything a turn reads, in one call: the history window (as
        :meth:`history_window`, with only the fields a prompt needs), the author's persona,
        how many moderation events name the author since ``flags_since``, and with a
        ``memory`` scope what :meth:`memory` reads for it."""
        params = {
            "conversation_id": conversation_id,
            "limit": max(limit, 0),  # SQLite reads a negative limit as none
            "platform": platform,
            "user_id": author_id,
            "since": flags_since,
        }

        def read(connection: Connection) -> tuple[Sequence[Any], Memory | None]:
            rows = connection.execute(_TURN_CONTEXT_QUERY, params).all()
            return rows, None if memory is None else _read_memory(connection, memory)

        rows, remembered = await self._database.read(read)
        persona, recent_flags = rows[0][:2]
        history = [WindowMessage(*row[2:]) for row in rows if row[2] is not None]
        return TurnContext(
            history=_in_conversation_order(history),
            persona=persona,
            recent_flags=int(recent_flags or 0),
            memory=remembered,
        )

    async def flag_message(self, message_id: int, sensitive_type: int) -> None:
        """Mark a message as sensitive input: it never goes into a prompt again.

        Does nothing if the message has been deleted meanwhile.
        """
        await self._update_message(
            message_id, input_flagged=True, input_sensitive_type=sensitive_type
        )

    async def set_delivered(
        self, message: StoredMessage, platform_message_ids: Sequence[str]
    ) -> None:
        """The platform showed the reply ``message`` as ``platform_message_ids`` (one per
        part, in order): from now on it goes into prompts, and each part finds it."""
        ids = list(platform_message_ids)
        delivered = {
            "message_id": message.id,
            "delivery": "delivered",
            "platform_message_id": ids[0] if ids else None,
        }
        parts = _part_rows(message, ids)

        def store(connection: Connection) -> None:
            connection.execute(_UPDATE_MESSAGE, delivered)
            if parts:
                connection.execute(_INSERT_PART, parts)

        await self._database.write(store)

    async def set_undelivered(self, message_id: int) -> None:
        """The platform did not take the reply ``message_id``: it stays out of prompts."""
        await self._update_message(message_id, delivery="undelivered")

    async def _update_message(self, message_id: int, **values: Any) -> None:
        await self._execute(_UPDATE_MESSAGE, {"message_id": message_id, **values})

    async def edit_message(self, conversation_id: int, platform_message_id: str, text: str) -> bool:
        """Replace the text of the message shown as ``platform_message_id``; ``False`` if none."""
        key = {"in_conversation": conversation_id, "shown_as": platform_message_id}
        edited = {**key, "text": text, "edited": True}
        return await self._execute(_UPDATE_BY_PLATFORM_ID, edited) > 0

    async def delete_message(self, conversation_id: int, platform_message_id: str) -> bool:
        """Delete the message shown as ``platform_message_id``; ``False`` if none."""
        key = {"in_conversation": conversation_id, "shown_as": platform_message_id}
        return await self._execute(_DELETE_BY_PLATFORM_ID, key) > 0

    async def find_by_platform_message_id(
        self, conversation_id: int, platform_message_id: str
    ) -> StoredMessage | None:
        """The message shown as ``platform_message_id`` in this conversation, if any: as its
        first part, or as a later part of a long reply."""
        key = {"in_conversation": conversation_id, "shown_as": platform_message_id}

        def find(connection: Connection) -> Sequence[Any] | None:
            return (
                connection.execute(_FIND_BY_PLATFORM_ID, key).first()
                or connection.execute(_FIND_BY_PART_ID, key).first()
            )

        row = await self._database.read(find)
        return None if row is None else StoredMessage(*row)

    async def reset_conversation(self, conversation_id: int) -> int:
        """Delete every message of the conversation; returns how many there were.

        Its memory goes with them (the summary, and the facts learned in it). Usage records
        and moderation events stay: they are accounts, not history.
        """
        statement = delete(_messages).where(_messages.c.conversation_id == conversation_id)
        memory = [
            delete(_memories).where(_memories.c.conversation_id == conversation_id),
            delete(_facts).where(_facts.c.conversation_id == conversation_id),
        ]

        def reset(connection: Connection) -> int:
            for forget in memory:
                connection.execute(forget)
            return _rowcount(connection.execute(statement))

        return await self._database.write(reset)

    # -- memory ----------------------------------------------------------------------------

    async def memory(self, scope: MemoryScope, user_ids: Sequence[str] | None = None) -> Memory:
        """The conversation's summary (``None`` if it has none) and what ``scope``'s character
        remembers about the users ``user_ids`` (``None``: about anyone who spoke here), oldest
        fact first: facts learned in this conversation and, if ``scope.shared``, shared ones
        learned in the users' others."""
        summary, facts = await self._database.read(lambda c: _read_memory(c, scope))
        if user_ids is not None:
            wanted = set(user_ids)
            facts = [fact for fact in facts if fact.user_id in wanted]
        return summary, facts

    async def messages_after(
        self, conversation_id: int, after: int, through: int, limit: int
    ) -> list[WindowMessage]:
        """Up to ``limit`` messages that may go into a prompt with ids in ``(after, through]``,
        oldest first (what fell out of the window since the summary was written)."""
        messages = _messages.c
        query = (
            select(*_columns(_messages, WindowMessage))
            .where(*_summarisable(conversation_id, after, through))
            .order_by(messages.id)
            .limit(limit)
        )
        rows = await self._database.read(lambda connection: connection.execute(query).all())
        return _in_conversation_order([WindowMessage(*row) for row in rows])

    async def save_memory(self, scope: MemoryScope, record: MemoryUpdateRecord) -> bool:
        """Store ``record`` and its new facts (each kept once per user and character; only the
        newest ``FACTS_KEPT`` per user stay), in one transaction, if the summary still covers
        ``record.expected_through`` and the ``record.read`` messages it was made from are all
        still there (none deleted, reset or forgotten meanwhile). ``False`` if not: another
        update won, or its source changed; nothing is stored."""
        conversation_id = scope.conversation_id
        now = _now()
        values = {"summary": record.summary, "covered_through": record.covered_through}
        memories = _memories.c
        statement: Any
        if record.expected_through == 0:
            insert_new = self._dialect_insert(_memories).values(
                conversation_id=conversation_id, updated_at=now, **values
            )
            statement = insert_new.on_conflict_do_update(
                index_elements=["conversation_id"],
                set_={**values, "updated_at": now},
                where=memories.covered_through == 0,
            )
        else:
            statement = (
                update(_memories)
                .where(
                    memories.conversation_id == conversation_id,
                    memories.covered_through == record.expected_through,
                )
                .values(**values, updated_at=now)
            )
        still_there = select(func.count()).where(
            *_summarisable(conversation_id, record.expected_through, record.covered_through)
        )

        def save(connection: Connection) -> bool:
            if connection.execute(still_there).scalar_one() != record.read:
                return False
            if _rowcount(connection.execute(statement)) == 0:
                return False
            for user_id, text in record.facts:
                _remember(connection, scope, user_id, text, now)
            return True

        return await self._database.write(save)

    async def set_summary(self, conversation_id: int, summary: str) -> bool:
        """Replace the conversation's summary (``""`` forgets it while keeping what it covered,
        so it is not written again from old messages); ``False`` if it has none."""
        statement = (
            update(_memories)
            .where(_memories.c.conversation_id == conversation_id)
            .values(summary=summary, updated_at=_now())
        )
        return await self._execute(statement) > 0

    async def set_fact(self, fact_id: int, user_id: str, text: str | None) -> bool:
        """Correct (``text``) or with ``None`` delete one of ``user_id``'s facts; ``False`` if
        they have no fact ``fact_id``."""
        mine = and_(_facts.c.id == fact_id, _facts.c.user_id == user_id)
        statement: Executable
        if text is None:
            statement = delete(_facts).where(mine)
        else:
            statement = update(_facts).where(mine).values(text=text)
        return await self._execute(statement) > 0

    # -- swipes: alternatives of a character's message ------------------------------------

    async def message(self, conversation_id: int, message_id: int) -> StoredMessage | None:
        """The message ``message_id`` of this conversation, if it is (still) there."""
        query = select(*_MESSAGE_COLUMNS).where(
            _messages.c.id == message_id, _messages.c.conversation_id == conversation_id
        )
        row = await self._database.read(lambda connection: connection.execute(query).first())
        return None if row is None else StoredMessage(*row)

    async def last_reply(self, conversation_id: int) -> StoredMessage | None:
        """The newest character message the conversation showed, if any."""
        query = (
            select(*_MESSAGE_COLUMNS)
            .where(
                _messages.c.conversation_id == conversation_id,
                _messages.c.role == "assistant",
                _messages.c.delivery == "delivered",
            )
            .order_by(_messages.c.id.desc())
            .limit(1)
        )
        row = await self._database.read(lambda connection: connection.execute(query).first())
        return None if row is None else StoredMessage(*row)

    async def is_newest(self, message: StoredMessage) -> bool:
        """Whether ``message`` is still the newest message of its conversation.

        A reply comes after the messages that arrived while it was written (their ids are
        smaller than its own), so for a reply only messages after what it answered count.
        """
        after = message.reply_to_id or message.id
        query = select(func.count()).where(
            _messages.c.conversation_id == message.conversation_id,
            _messages.c.id > after,
            _messages.c.id != message.id,
        )
        later = await self._database.read(lambda connection: connection.execute(query).scalar())
        return not later

    async def platform_message_ids(self, message: StoredMessage) -> list[str]:
        """The platform messages that show ``message``, its first part first."""
        if message.platform_message_id is None:
            return []
        query = (
            select(_parts.c.platform_message_id)
            .where(_parts.c.message_id == message.id)
            .order_by(_parts.c.part)
        )
        rows = await self._database.read(lambda connection: connection.execute(query).all())
        return [message.platform_message_id, *(row[0] for row in rows)]

    async def alternatives(self, message: StoredMessage) -> Alternatives:
        """The alternatives of ``message`` and which one it shows (just its own text when
        it was never regenerated)."""
        query = (
            select(_alternatives.c.text, _alternatives.c.shown)
            .where(_alternatives.c.message_id == message.id)
            .order_by(_alternatives.c.position)
        )
        rows = await self._database.read(lambda connection: connection.execute(query).all())
        if not rows:
            return Alternatives((message.text,), 0)
        shown = next((index for index, row in enumerate(rows) if row[1]), 0)
        return Alternatives(tuple(row[0] for row in rows), shown)

    async def set_alternatives(self, message_id: int, texts: Sequence[str], shown: int) -> None:
        """Give a new message its alternatives (a greeting: every greeting of the character),
        ``shown`` being the one its text is."""
        now = _now()
        rows = [
            {
                "message_id": message_id,
                "position": position,
                "text": text,
                "shown": position == shown,
                "created_at": now,
            }
            for position, text in enumerate(texts)
        ]
        await self._database.write(
            lambda connection: connection.execute(_INSERT_ALTERNATIVES, rows)
        )

    async def add_alternative(self, message: StoredMessage, text: str, call: ModelCall) -> int:
        """Store ``text`` as a new alternative of ``message`` (not shown yet: see
        :meth:`show_alternative`) with the model call that wrote it, in one transaction;
        returns its position."""
        alternatives = _alternatives.c
        count_query = select(func.count()).where(alternatives.message_id == message.id)
        call_params = {**_model_call_params(call), "reply_message_id": message.id}
        now = _now()

        def store(connection: Connection) -> int:
            count = int(connection.execute(count_query).scalar() or 0)
            rows = []
            if count == 0:  # the first regeneration: the message's own text becomes the first
                first = {"position": 0, "text": message.text, "shown": True}
                rows.append(first)
                count = 1
            rows.append({"position": count, "text": text, "shown": False})
            connection.execute(
                _INSERT_ALTERNATIVES,
                [{**row, "message_id": message.id, "created_at": now} for row in rows],
            )
            connection.execute(_INSERT_MODEL_CALL, call_params)
            return count

        return await self._database.write(store)

    async def show_alternative(
        self, message: StoredMessage, position: int, platform_message_ids: Sequence[str]
    ) -> str:
        """Make the alternative at ``position`` the one ``message`` shows (its text, and so
        what history holds), now shown as ``platform_message_ids``; returns its text."""
        alternatives = _alternatives.c
        text_query = select(alternatives.text).where(
            alternatives.message_id == message.id, alternatives.position == position
        )
        choose = (
            update(_alternatives)
            .where(alternatives.message_id == message.id)
            .values(shown=alternatives.position == position)
        )

        def store(connection: Connection) -> str:
            text = str(connection.execute(text_query).scalar_one())
            connection.execute(choose)
            connection.execute(_UPDATE_MESSAGE, {"message_id": message.id, "text": text})
            _replace_parts(connection, message, platform_message_ids)
            return text

        return await self._database.write(store)

    async def extend_reply(
        self, message: StoredMessage, text: str, platform_message_ids: Sequence[str]
    ) -> None:
        """``message`` now reads ``text`` (continued), shown as ``platform_message_ids``; the
        alternative it shows grows with it."""
        alternatives = _alternatives.c
        grow = (
            update(_alternatives)
            .where(alternatives.message_id == message.id, alternatives.shown.is_(True))
            .values(text=text)
        )

        def store(connection: Connection) -> None:
            connection.execute(_UPDATE_MESSAGE, {"message_id": message.id, "text": text})
            connection.execute(grow)
            _replace_parts(connection, message, platform_message_ids)

        await self._database.write(store)

    # -- turns owed ------------------------------------------------------------------------

    async def mark_answered(self, conversation_id: int, through: int) -> None:
        """Note that a finished turn answered the conversation's messages up to ``through``
        (or that they are given up); never goes back."""
        params = {"in_conversation": conversation_id, "through": through}
        await self._execute(_MARK_ANSWERED, params)

    async def answered_through(self, conversation_id: int) -> int:
        """The newest message of the conversation a finished turn answered (0 if none)."""
        key = {"in_conversation": conversation_id}
        answered = await self._database.read(
            lambda connection: connection.execute(_ANSWERED_THROUGH, key).scalar_one_or_none()
        )
        return 0 if answered is None else int(answered)

    async def owed_turns(self, platform: str) -> list[OwedTurn]:
        """The conversations on ``platform`` owed a turn (a message stored ``owed`` is ahead of
        what was answered) that no process holds a live claim on, oldest first."""
        claims, messages = _claims.c, _messages.c
        said = _messages.alias("said").c
        newest_unanswered = (
            select(func.max(said.id))
            .where(
                said.conversation_id == claims.conversation_id,
                said.role == "user",
                said.id > claims.answered_through,
                said.id <= claims.wanted_through,
            )
            .correlate(_claims)
            .scalar_subquery()
        )
        query = (
            select(*_CONVERSATION_COLUMNS, claims.wanted_through, *_MESSAGE_COLUMNS)
            .select_from(
                _claims.join(
                    _conversations, _conversations.c.id == claims.conversation_id
                ).outerjoin(_messages, messages.id == newest_unanswered)
            )
            .where(
                _conversations.c.platform == platform,
                claims.wanted_through > claims.answered_through,
                claims.owner.is_(None) | (claims.expires_at < _now()),
            )
            .order_by(claims.wanted_through)
        )
        rows = await self._database.read(lambda connection: connection.execute(query).all())
        split = len(_CONVERSATION_COLUMNS)
        return [
            OwedTurn(
                _conversation(row[:split]),
                int(row[split]),
                None if row[split + 1] is None else StoredMessage(*row[split + 1 :]),
            )
            for row in rows
        ]

    # -- turn claims (several processes on one database) ------------------------------------

    async def claim_turn(self, conversation_id: int, owner: str, lease: timedelta) -> int | None:
        """Claim the conversation's next turn for ``owner`` until ``lease`` from now.

        Returns the newest message id a finished turn has answered (0 if none), or ``None``
        while someone else holds an unexpired claim.
        """
        now = _now()
        claims = _claims.c
        statement = (
            self._dialect_insert(_claims)
            .values(
                conversation_id=conversation_id,
                owner=owner,
                expires_at=now + lease,
                answered_through=0,
            )
            .on_conflict_do_update(
                index_elements=["conversation_id"],
                set_={"owner": owner, "expires_at": now + lease},
                where=claims.owner.is_(None) | (claims.expires_at < now) | (claims.owner == owner),
            )
            .returning(claims.answered_through)
        )
        answered = await self._database.write(
            lambda connection: connection.execute(statement).scalar_one_or_none()
        )
        return None if answered is None else int(answered)

    async def renew_turn(self, conversation_id: int, owner: str, lease: timedelta) -> bool:
        """Extend ``owner``'s claim; ``False`` if it was lost (it had expired and was taken)."""
        statement = (
            update(_claims)
            .where(_claims.c.conversation_id == conversation_id, _claims.c.owner == owner)
            .values(expires_at=_now() + lease)
        )
        return await self._execute(statement) > 0

    async def release_turn(self, conversation_id: int, owner: str, answered_through: int) -> None:
        """End ``owner``'s claim, noting that messages up to ``answered_through`` are answered."""
        answered = _claims.c.answered_through
        statement = (
            update(_claims)
            .where(_claims.c.conversation_id == conversation_id, _claims.c.owner == owner)
            .values(
                owner=None,
                expires_at=None,
                answered_through=case(
                    (answered < answered_through, answered_through), else_=answered
                ),
            )
        )

        def release(connection: Connection) -> None:
            connection.execute(statement)
            if self.backend == "postgresql":
                # Delivered when the release commits.
                connection.execute(select(func.pg_notify(TURN_RELEASED, str(conversation_id))))

        await self._database.write(release)

    async def on_turn_released(self, heard: Callable[[int], None]) -> bool:
        """Call ``heard`` with the conversation id whenever any process releases a turn
        claim, so that waiters need not poll. ``False`` (and nothing happens) on SQLite."""
        return await self._database.listen(TURN_RELEASED, lambda payload: heard(int(payload)))

    # -- usage -----------------------------------------------------------------------------

    async def record_model_call(self, call: ModelCall) -> None:
        """Store one model call, successful or not, for usage accounting."""
        await self._execute(_INSERT_MODEL_CALL, _model_call_params(call))

    async def usage_totals(
        self,
        *,
        platform: str,
        author_id: str | None = None,
        chat_id: str | None = None,
        server_id: str | None = None,
        since: datetime | None = None,
        kind: CallKind | None = None,
    ) -> UsageTotals:
        """Calls and tokens summed over a platform, optionally for one user, chat and/or
        server, from ``since`` on, and of one ``kind`` of call (``reply``, ``nudge``,
        ``memory``)."""
        query = (
            select(
                func.count(_model_calls.c.id),
                func.coalesce(func.sum(_model_calls.c.prompt_tokens), 0),
                func.coalesce(func.sum(_model_calls.c.completion_tokens), 0),
                func.coalesce(func.sum(_model_calls.c.total_tokens), 0),
            )
            .join(_conversations, _conversations.c.id == _model_calls.c.conversation_id)
            .where(_conversations.c.platform == platform)
        )
        if author_id is not None:
            query = query.where(_model_calls.c.author_id == author_id)
        if chat_id is not None:
            query = query.where(_conversations.c.chat_id == chat_id)
        if server_id is not None:
            query = query.where(_conversations.c.server_id == server_id)
        if since is not None:
            query = query.where(_model_calls.c.created_at >= since)
        if kind is not None:
            query = query.where(_model_calls.c.kind == kind)
        calls, prompt, completion, total = await self._database.read(
            lambda connection: connection.execute(query).one()
        )
        return UsageTotals(
            calls=int(calls),
            prompt_tokens=int(prompt),
            completion_tokens=int(completion),
            total_tokens=int(total),
        )

    # -- moderation ------------------------------------------------------------------------

    async def record_moderation_event(self, event: NewModerationEvent) -> ModerationEvent:
        """Store a moderation event and return it as stored."""
        statement = (
            insert(_moderation_events)
            .values(**_fields(event), created_at=_now())
            .returning(*_MODERATION_COLUMNS)
        )
        row = await self._database.write(lambda connection: connection.execute(statement).one())
        return ModerationEvent(*row)

    async def moderation_events(
        self,
        *,
        platform: str | None = None,
        chat_id: str | None = None,
        author_id: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[ModerationEvent]:
        """The newest ``limit`` moderation events matching every filter given, newest first."""
        events = _moderation_events.c
        filters = [
            column == value
            for column, value in (
                (events.platform, platform),
                (events.chat_id, chat_id),
                (events.author_id, author_id),
            )
            if value is not None
        ]
        if since is not None:
            filters.append(events.created_at >= since)
        query = (
            select(*_MODERATION_COLUMNS)
            .where(*filters)
            .order_by(events.created_at.desc(), events.id.desc())
            .limit(limit)
        )
        rows = await self._database.read(lambda connection: connection.execute(query).all())
        return [ModerationEvent(*row) for row in rows]

    # -- users -----------------------------------------------------------------------------

    async def set_persona(self, platform: str, user_id: str, persona: str | None) -> None:
        """Set who the user is in the story; ``None`` clears it."""
        statement: Executable
        if persona is None:
            statement = delete(_personas).where(
                _personas.c.platform == platform, _personas.c.user_id == user_id
            )
        else:
            values = {"persona": persona, "updated_at": _now()}
            statement = (
                self._dialect_insert(_personas)
                .values(platform=platform, user_id=user_id, **values)
                .on_conflict_do_update(index_elements=["platform", "user_id"], set_=values)
            )
        await self._execute(statement)

    async def get_persona(self, platform: str, user_id: str) -> str | None:
        """The user's persona, or ``None`` if they never set one."""
        user = {"platform": platform, "user_id": user_id}
        persona = await self._database.read(
            lambda connection: connection.execute(_GET_PERSONA, user).scalar_one_or_none()
        )
        return cast(str | None, persona)

    # -- settings --------------------------------------------------------------------------

    async def get_settings(
        self, platform: str, scope: SettingsScope, scope_id: str
    ) -> dict[str, Any]:
        """The settings stored for one chat or server (empty if none were ever set)."""
        key = {"platform": platform, "scope": scope, "scope_id": scope_id}
        data = await self._database.read(
            lambda connection: connection.execute(_GET_SETTINGS, key).scalar_one_or_none()
        )
        return dict(data or {})

    async def all_settings(self, platform: str, scope: SettingsScope) -> dict[str, dict[str, Any]]:
        """Every chat's or server's stored settings on ``platform``, by id."""
        query = select(_settings.c.scope_id, _settings.c.data).where(
            _settings.c.platform == platform, _settings.c.scope == scope
        )
        rows = await self._database.read(lambda connection: connection.execute(query).all())
        return {scope_id: dict(data) for scope_id, data in rows}

    async def set_settings(
        self, platform: str, scope: SettingsScope, scope_id: str, data: Mapping[str, Any]
    ) -> None:
        """Replace the settings of one chat or server with ``data`` (a JSON object)."""
        values = {"data": dict(data), "updated_at": _now()}
        statement = (
            self._dialect_insert(_settings)
            .values(platform=platform, scope=scope, scope_id=scope_id, **values)
            .on_conflict_do_update(index_elements=["platform", "scope", "scope_id"], set_=values)
        )
        await self._execute(statement)

    async def forget_user(self, platform: str, user_id: str) -> ForgetReport:
        """Delete everything stored about a user on a platform, in one transaction.

        That is: their messages, the replies the model wrote for their turns, their persona,
        their model calls, the moderation events naming them, their private chats' nudge
        settings (so nothing is sent to them until they ask again), the facts the characters
        remember about them, and the memory (summary) of every conversation they spoke in.
        """
        on_platform = select(_conversations.c.id).where(_conversations.c.platform == platform)
        calls = _model_calls.c
        their_calls = and_(calls.author_id == user_id, calls.conversation_id.in_(on_platform))
        replies_for_them = select(calls.reply_message_id).where(
            their_calls, calls.reply_message_id.is_not(None)
        )
        messages = _messages.c
        spoke_in = select(messages.conversation_id).where(
            messages.conversation_id.in_(on_platform),
            messages.role == "user",
            messages.author_id == user_id,
        )
        memories = [
            # Before their messages go: the summaries are found through them.
            delete(_memories).where(_memories.c.conversation_id.in_(spoke_in)),
            delete(_facts).where(_facts.c.platform == platform, _facts.c.user_id == user_id),
        ]
        # In this order: the replies are found through the model calls.
        statements = {
            "messages": delete(_messages).where(
                messages.conversation_id.in_(on_platform),
                ((messages.role == "user") & (messages.author_id == user_id))
                | messages.id.in_(replies_for_them),
            ),
            "model_calls": delete(_model_calls).where(their_calls),
            "moderation_events": delete(_moderation_events).where(
                _moderation_events.c.platform == platform,
                _moderation_events.c.author_id == user_id,
            ),
            "personas": delete(_personas).where(
                _personas.c.platform == platform, _personas.c.user_id == user_id
            ),
            "nudges": delete(_nudges).where(
                _nudges.c.user_id == user_id, _nudges.c.conversation_id.in_(on_platform)
            ),
        }

        def forget(connection: Connection) -> ForgetReport:
            forgotten = sum(_rowcount(connection.execute(s)) for s in memories)
            counts = {kind: _rowcount(connection.execute(s)) for kind, s in statements.items()}
            return ForgetReport(**counts, memories=forgotten)

        return await self._database.write(forget)


def _replace_parts(
    connection: Connection, message: StoredMessage, platform_message_ids: Sequence[str]
) -> None:
    """``message`` is now shown as ``platform_message_ids`` (its first part first)."""
    ids = list(platform_message_ids)
    if not ids:
        return
    connection.execute(_UPDATE_MESSAGE, {"message_id": message.id, "platform_message_id": ids[0]})
    connection.execute(delete(_parts).where(_parts.c.message_id == message.id))
    if parts := _part_rows(message, ids):
        connection.execute(_INSERT_PART, parts)


def _part_rows(message: StoredMessage, platform_message_ids: list[str]) -> list[dict[str, Any]]:
    """The ``message_parts`` rows of a reply shown as ``platform_message_ids``: every part
    after the first (which is the message's own ``platform_message_id``)."""
    return [
        {
            "message_id": message.id,
            "part": part,
            "conversation_id": message.conversation_id,
            "platform_message_id": platform_id,
        }
        for part, platform_id in enumerate(platform_message_ids[1:], start=1)
    ]


def _read_memory(connection: Connection, scope: MemoryScope) -> Memory:
    """The conversation's summary and the facts ``scope``'s character remembers there."""
    params = {
        "in_conversation": scope.conversation_id,
        "platform": scope.platform,
        "character_id": scope.character_id,
    }
    row = connection.execute(_GET_SUMMARY, params).first()
    facts_query = _SHARED_FACTS if scope.shared else _FACTS_HERE
    facts = [UserFact(*fact) for fact in connection.execute(facts_query, params)]
    return (None if row is None else ConversationMemory(*row)), facts


#: How many facts per user and character are kept (the newest).
FACTS_KEPT = 30


def _facts_of(scope: MemoryScope) -> list[Any]:
    """Filters for the facts ``scope``'s character remembers in ``scope``'s conversation."""
    facts = _facts.c
    where = facts.conversation_id == scope.conversation_id
    if scope.shared:
        where = where | facts.shared.is_(True)
    return [facts.platform == scope.platform, facts.character_id == scope.character_id, where]


def _summarisable(conversation_id: int, after: int, through: int) -> list[Any]:
    """Filters for a conversation's prompt-worthy messages with ids in ``(after, through]``."""
    messages = _messages.c
    return [
        messages.conversation_id == conversation_id,
        messages.input_flagged.is_(False),
        messages.delivery == literal_column("'delivered'"),
        messages.id > after,
        messages.id <= through,
    ]


def _remember(
    connection: Connection, scope: MemoryScope, user_id: str, text: str, now: datetime
) -> None:
    """Add ``text`` to ``user_id``'s facts unless known; keep the newest :data:`FACTS_KEPT`."""
    facts = _facts.c
    theirs = [*_facts_of(scope), facts.user_id == user_id]
    known = connection.execute(select(facts.text).where(*theirs)).scalars()
    if text.casefold() in {fact.casefold() for fact in known}:
        return
    connection.execute(
        insert(_facts).values(
            platform=scope.platform,
            user_id=user_id,
            character_id=scope.character_id,
            conversation_id=scope.conversation_id,
            shared=scope.shared,
            text=text,
            created_at=now,
        )
    )
    newest = select(facts.id).where(*theirs).order_by(facts.id.desc()).limit(FACTS_KEPT)
    connection.execute(delete(_facts).where(*theirs, facts.id.not_in(newest.scalar_subquery())))


def _conversation(row: Sequence[Any]) -> Conversation:
    values = list(row)
    values[-1] = tuple(values[-1] or ())  # scene: JSON list, or NULL
    return Conversation(*values)


_Message = TypeVar("_Message", StoredMessage, WindowMessage)


def _in_conversation_order(messages: list[_Message]) -> list[_Message]:
    """``messages`` (any order) sorted into conversation order, oldest first.

    A reply goes right after the message it answered, before those that arrived while it
    was being written (their ids are smaller than the reply's).
    """
    messages.sort(key=lambda m: (m.id, 0) if m.reply_to_id is None else (m.reply_to_id, 1))
    return messages


def _fields(record: Any) -> dict[str, Any]:
    # dataclasses.asdict deep-copies every value; these records hold only immutable ones.
    return {name: getattr(record, name) for name in _field_names(type(record))}


def _new_message_params(message: NewMessage) -> dict[str, Any]:
    return {
        **_fields(message),
        "created_at": _now(),
        "prompt_tokens": None,
        "completion_tokens": None,
        "input_flagged": False,
        "input_sensitive_type": 0,
        "edited": False,
    }


def _model_call_params(call: ModelCall) -> dict[str, Any]:
    return {**_fields(call), "created_at": _now()}


async def open_storage(database_url: str, *, migrate: bool = True) -> Storage:
    """Connect to ``database_url`` and return a ready :class:`Storage`.

    With ``migrate`` (the default) the schema is first brought up to date; without it, a
    database that is not up to date raises :class:`~bot.storage.errors.SchemaOutOfDate`.
    A SQLite file (and its folder) is created if missing.
    """
    url = parse_url(database_url)
    if migrate:
        await migrate_url(url)
    database = open_database(url)
    if not migrate:
        try:
            await check_schema(database)
        except BaseException:
            await database.dispose()
            raise
    return Storage(database)
