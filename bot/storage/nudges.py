"""Characters that speak first: each conversation's nudge settings and state.

The scheduler (``bot.conversation.nudges``) derives every next due time from what is stored
here (the settings, the last nudge, the count of the local day, the newest message), so a
restart loses nothing; :meth:`NudgeStore.claim` is a compare-and-set on that state, so when
several processes share the database exactly one of them sends each nudge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select, update

from bot.storage.database import Database
from bot.storage.models import ConversationRow, MessageRow, NudgeRow, TurnClaimRow
from bot.storage.records import Conversation

__all__ = ["NudgePlan", "NudgeSettings", "NudgeState", "NudgeStore"]

_nudges = cast(Table, NudgeRow.__table__)
_conversations = cast(Table, ConversationRow.__table__)
_messages = cast(Table, MessageRow.__table__)
_claims = cast(Table, TurnClaimRow.__table__)


@dataclass(frozen=True, slots=True)
class NudgeSettings:
    """What an admin (a channel) or the user (a private chat) chose; ``None``: the default."""

    enabled: bool = False
    quiet_minutes: int | None = None
    #: ``HH:MM-HH:MM`` local time, or ``""`` for none.
    quiet_hours: str | None = None
    timezone: str | None = None
    max_per_day: int | None = None
    #: A 5-field cron expression for scheduled greetings, or ``""`` for none.
    schedule: str | None = None
    #: The user of a private chat who opted in.
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class NudgeState:
    """What the characters did so far: the scheduler's memory across restarts."""

    blocked_at: datetime | None = None
    enabled_at: datetime | None = None
    last_nudge_at: datetime | None = None
    #: The scheduled time of the last greeting handled (sent or skipped).
    last_greeting_at: datetime | None = None
    #: The local date ``sent_today`` counts for (``YYYY-MM-DD``).
    day: str | None = None
    sent_today: int = 0


@dataclass(frozen=True, slots=True)
class NudgePlan:
    """One conversation where characters may speak first, with what its due times come from."""

    conversation: Conversation
    settings: NudgeSettings
    state: NudgeState
    #: When the newest delivered message was stored (``None``: no message yet).
    last_activity: datetime | None
    #: A turn is owed (a human waits for an answer): no nudge now.
    owed: bool


_SETTINGS = [_nudges.c[name] for name in NudgeSettings.__dataclass_fields__]
_STATE = [_nudges.c[name] for name in NudgeState.__dataclass_fields__]
_CONVERSATION = [_conversations.c[name] for name in Conversation.__dataclass_fields__]
_LAST_ACTIVITY = (
    select(func.max(_messages.c.created_at))
    .where(
        _messages.c.conversation_id == _nudges.c.conversation_id,
        _messages.c.delivery == "delivered",
    )
    .scalar_subquery()
)
_OWED = (
    select(func.count())
    .where(
        _claims.c.conversation_id == _nudges.c.conversation_id,
        _claims.c.wanted_through > _claims.c.answered_through,
    )
    .scalar_subquery()
)
_PLANS = select(*_CONVERSATION, *_SETTINGS, *_STATE, _LAST_ACTIVITY, _OWED).join(
    _conversations, _conversations.c.id == _nudges.c.conversation_id
)


def _plan(row: Sequence[Any]) -> NudgePlan:
    values = list(row)
    conversation_values = values[: len(_CONVERSATION)]
    conversation_values[-1] = tuple(conversation_values[-1] or ())  # scene: JSON or NULL
    rest = values[len(_CONVERSATION) :]
    settings = NudgeSettings(*rest[: len(_SETTINGS)])
    rest = rest[len(_SETTINGS) :]
    state = NudgeState(*rest[: len(_STATE)])
    last_activity, owed = rest[len(_STATE) :]
    return NudgePlan(Conversation(*conversation_values), settings, state, last_activity, owed > 0)


class NudgeStore:
    """The ``nudges`` table; reached as ``Storage.nudges``."""

    def __init__(self, database: Database, dialect_insert: Callable[[Table], Any]) -> None:
        self._database = database
        self._insert = dialect_insert

    async def plans(self) -> list[NudgePlan]:
        """Every conversation where nudges are on and the chat has not refused the bot."""
        query = _PLANS.where(_nudges.c.enabled.is_(True), _nudges.c.blocked_at.is_(None))
        rows = await self._database.read(lambda connection: connection.execute(query).all())
        return [_plan(row) for row in rows]

    async def plan(self, conversation_id: int) -> NudgePlan | None:
        """The conversation's nudge settings and state, on or off; ``None`` if never set."""
        query = _PLANS.where(_nudges.c.conversation_id == conversation_id)
        row = await self._database.read(lambda connection: connection.execute(query).first())
        return None if row is None else _plan(row)

    async def save(self, conversation_id: int, settings: NudgeSettings, *, now: datetime) -> None:
        """Store ``settings``; turning nudges on (again) starts counting the quiet period
        from ``now`` and forgets that the chat once refused the bot."""
        values: dict[str, Any] = {
            name: getattr(settings, name) for name in NudgeSettings.__dataclass_fields__
        }
        values["updated_at"] = now
        turned_on = {"enabled_at": now, "blocked_at": None} if settings.enabled else {}
        nudges = _nudges.c

        def save(connection: Connection) -> None:
            was_on = connection.execute(
                select(nudges.enabled, nudges.blocked_at).where(
                    nudges.conversation_id == conversation_id
                )
            ).first()
            if was_on is None:
                connection.execute(
                    self._insert(_nudges).values(
                        conversation_id=conversation_id, **values, **turned_on
                    )
                )
                return
            newly_on = turned_on if not was_on.enabled or was_on.blocked_at is not None else {}
            connection.execute(
                update(_nudges)
                .where(nudges.conversation_id == conversation_id)
                .values(**values, **newly_on)
            )

        await self._database.write(save)

    async def claim(
        self,
        conversation_id: int,
        seen: NudgeState,
        *,
        sent_at: datetime | None,
        day: str,
        sent_today: int,
        greeting_at: datetime | None = None,
    ) -> bool:
        """Take the nudge due in the state ``seen``: note it as sent at ``sent_at`` (``None``:
        a greeting skipped), ``sent_today`` on the local ``day``, and the greeting scheduled
        for ``greeting_at`` as handled. ``False`` when the state changed since it was read
        (another process took it, or nudges were turned off): then nothing is written."""
        nudges = _nudges.c
        values: dict[str, Any] = {"day": day, "sent_today": sent_today}
        if sent_at is not None:
            values["last_nudge_at"] = sent_at
        if greeting_at is not None:
            values["last_greeting_at"] = greeting_at
        statement = (
            update(_nudges)
            .where(
                nudges.conversation_id == conversation_id,
                nudges.enabled.is_(True),
                nudges.blocked_at.is_(None),
                nudges.last_nudge_at.is_not_distinct_from(seen.last_nudge_at),
                nudges.last_greeting_at.is_not_distinct_from(seen.last_greeting_at),
            )
            .values(**values)
        )
        touched = await self._database.write(
            lambda connection: connection.execute(statement).rowcount
        )
        return bool(touched)

    async def block(self, conversation_id: int, *, at: datetime) -> None:
        """The chat refuses the bot (blocked, DMs closed, gone): nudges off, and remembered."""
        await self._block(_nudges.c.conversation_id == conversation_id, at)

    async def block_chat(self, platform: str, chat_id: str, *, at: datetime) -> int:
        """:meth:`block` every conversation of one chat (its threads or topics too); how many
        had nudges on."""
        in_chat = select(_conversations.c.id).where(
            _conversations.c.platform == platform, _conversations.c.chat_id == chat_id
        )
        return await self._block(_nudges.c.conversation_id.in_(in_chat), at)

    async def _block(self, which: Any, at: datetime) -> int:
        statement = (
            update(_nudges)
            .where(which, _nudges.c.enabled.is_(True))
            .values(enabled=False, blocked_at=at, updated_at=at)
        )
        touched: int = await self._database.write(
            lambda connection: connection.execute(statement).rowcount
        )
        return touched
