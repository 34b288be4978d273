"""The plain, immutable values the storage layer takes and returns.

Callers never see ORM objects: these records are safe to keep, share between tasks and compare.
Every timestamp is timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple

MessageRole = Literal["user", "assistant"]
Direction = Literal["input", "output"]
#: How far a message reached the chat. A human's message is there (``delivered``); a reply
#: is stored ``pending`` before the platform is asked to show it, then becomes
#: ``delivered`` (with the ids of the platform messages) or ``undelivered``. Only delivered
#: messages go into prompts.
Delivery = Literal["pending", "delivered", "undelivered"]
#: What a model call was for: a turn's reply, or updating a conversation's memory.
CallKind = Literal["reply", "nudge", "memory"]


@dataclass(frozen=True, slots=True)
class Conversation:
    """One chat (or thread/topic within it) on one platform, bound to a main character."""

    id: int
    platform: str
    chat_id: str
    thread_id: str
    character_id: str
    created_at: datetime
    server_id: str | None = None
    #: Extra characters sharing the scene with the main one.
    scene: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to store: what a human said (``user``) or what a character replied."""

    conversation_id: int
    role: MessageRole
    author_id: str
    author_name: str
    text: str
    character_id: str | None = None
    token_estimate: int | None = None
    platform_message_id: str | None = None
    #: For a reply: the newest message it answered (it is shown right after that one).
    reply_to_id: int | None = None
    delivery: Delivery = "delivered"


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as stored, with its id, time, token counts and moderation state."""

    id: int
    conversation_id: int
    role: MessageRole
    author_id: str
    author_name: str
    text: str
    character_id: str | None
    created_at: datetime
    token_estimate: int | None
    prompt_tokens: int | None
    completion_tokens: int | None
    input_flagged: bool
    input_sensitive_type: int
    platform_message_id: str | None
    edited: bool
    reply_to_id: int | None
    delivery: Delivery


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One call to the model, successful or not, for usage accounting."""

    conversation_id: int
    author_id: str
    character_id: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    ok: bool
    error_code: int | None = None
    trace_id: str | None = None
    latency_ms: int | None = None
    reply_message_id: int | None = None
    #: The reply ran far past ``max_completion_tokens`` and was cut while streaming; the
    #: token counts are then estimates.
    cut: bool = False
    #: What the call was for: ``reply`` (answering people), ``nudge`` (a character speaking
    #: first) or ``memory`` (a memory update).
    kind: CallKind = "reply"


@dataclass(frozen=True, slots=True)
class NewModerationEvent:
    """A sensitive flag raised by the model on a user's input or on a reply."""

    conversation_id: int
    platform: str
    chat_id: str
    author_id: str
    direction: Direction
    sensitive_type: int
    type_name: str
    message_id: int | None = None
    trace_id: str | None = None


@dataclass(frozen=True, slots=True)
class ModerationEvent:
    """A stored moderation event."""

    id: int
    conversation_id: int
    platform: str
    chat_id: str
    author_id: str
    direction: Direction
    sensitive_type: int
    type_name: str
    message_id: int | None
    trace_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ForgetReport:
    """How many rows :meth:`Storage.forget_user` deleted, per kind."""

    messages: int
    personas: int
    model_calls: int
    moderation_events: int
    #: Their private chats' nudge settings (who opted in).
    nudges: int = 0
    #: Facts about the user, and summaries of conversations they spoke in.
    memories: int = 0


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Summed token usage over a set of model calls."""

    calls: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class WindowMessage(NamedTuple):
    """A message of a turn's history window: only what the prompt and moderation use.

    A named tuple, not a dataclass like the other records: a turn makes dozens of them,
    and a tuple is built in a quarter of the time.
    """

    id: int
    role: MessageRole
    author_id: str
    author_name: str
    text: str
    character_id: str | None
    #: For a reply: the newest message it answered (it is shown right after that one).
    reply_to_id: int | None


@dataclass(frozen=True, slots=True)
class TurnContext:
    """What one turn reads before calling the model, fetched in one call."""

    history: list[WindowMessage]
    persona: str | None
    recent_flags: int
    #: The summary and facts of the memory scope the turn asked for (``None``: none asked).
    memory: Memory | None = None


@dataclass(frozen=True, slots=True)
class OwedTurn:
    """A conversation owed a turn: a human message it was decided to answer is unanswered,
    and no process holds a live claim on its turn."""

    conversation: Conversation
    #: The newest message the turn is owed for (the answered ones become answered up to it).
    wanted_through: int
    #: The newest human message still unanswered; ``None`` if they were all deleted.
    message: StoredMessage | None


@dataclass(frozen=True, slots=True)
class Alternatives:
    """The alternatives of a character's message (its swipes) and which one it shows."""

    texts: tuple[str, ...]
    #: The position of the one shown, which the message's text is (0 for the first).
    shown: int


@dataclass(frozen=True, slots=True)
class ConversationMemory:
    """A conversation's rolling summary and the newest message id it covers."""

    summary: str
    covered_through: int


@dataclass(frozen=True, slots=True)
class UserFact:
    """Something a user stated about themselves, as a character remembers it."""

    id: int
    user_id: str
    text: str
    #: Learned where sharing was allowed: it reaches the user's other conversations with the
    #: character that allow it too.
    shared: bool
    conversation_id: int


#: A conversation's summary (``None``: none yet) and the facts its character remembers there.
Memory = tuple[ConversationMemory | None, list[UserFact]]


@dataclass(frozen=True, slots=True)
class MemoryScope:
    """Whose memory: a conversation, one character in it, and whether facts shared from the
    user's other conversations with that character reach it (and its new facts are shared)."""

    conversation_id: int
    platform: str
    character_id: str
    shared: bool = False


@dataclass(frozen=True, slots=True)
class MemoryUpdateRecord:
    """A memory update to store: the new summary through ``covered_through``, made from the
    ``read`` messages after ``expected_through``, and the new ``facts`` as ``(user_id, text)``.
    """

    summary: str
    expected_through: int
    covered_through: int
    read: int
    facts: tuple[tuple[str, str], ...] = ()
