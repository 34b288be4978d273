"""Long-term memory: what a conversation keeps of the messages that fell out of its window.

Not to be confused with :mod:`bot.memory` (the C allocator). ``docs/design.md``, "Memory",
has the whole picture:

* Each turn reads the conversation's rolling summary and the facts its character remembers
  (:meth:`Recall.fetch`, alongside its window) and sends those about the people in the window
  (:meth:`Recall.recalled`); the prompt carries them as one
  ``group`` message named :data:`~bot.characters.prompt.MEMORY_NAME`, right after the
  scene, within the budget.
* When messages have fallen out of the window the summary does not cover yet, the turn, once
  its reply is out, starts an update in the background (:meth:`Recall.after_turn`): M2-her
  folds them (and the next :attr:`MemorySettings.lookahead` messages, so a few turns pass
  before the next update) into the summary and lists facts people stated about themselves.
* An update is a paid model call like a turn (stored as a ``memory`` model call, counted in
  the metrics apart, refused once the author's, chat's or server's daily budget is spent), at
  most one per conversation at a time in a process, and stored only if the summary still
  covers what it started from (several processes). A failure changes nothing: the
  conversation goes on with its plain window.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.characters.names import sanitize_name
from bot.characters.schema import Character
from bot.conversation.limits import LimitGuard
from bot.conversation.policy import ChatPolicy
from bot.llm.client import M2HerClient
from bot.llm.errors import M2HerError
from bot.llm.summary import MemoryUpdate, memory_request, parse_memory_update
from bot.llm.tokens import estimate_message_tokens
from bot.llm.types import MODEL
from bot.observability.metrics import Metrics
from bot.storage import (
    Conversation,
    ConversationMemory,
    MemoryScope,
    MemoryUpdateRecord,
    ModelCall,
    Storage,
    UserFact,
    WindowMessage,
)

__all__ = ["MemoryItems", "MemorySettings", "Recall", "Recalled", "Remembered", "memory_text"]

log = logging.getLogger("bot.conversation.recall")


@dataclass(frozen=True, slots=True)
class MemorySettings:
    """How memory updates are made."""

    #: The summary's length the model is asked to keep to.
    summary_words: int = 250
    #: The update call's ``max_completion_tokens`` (the summary and the facts, as JSON).
    reply_tokens: int = 1024
    #: The most transcript one update call reads; more waits for the next call (at once).
    transcript_tokens: int = 6000
    #: Messages still in the window folded in with those that fell out, so that a few
    #: turns pass before the next update.
    lookahead: int = 10


@dataclass(frozen=True, slots=True)
class Recalled:
    """What a turn read of the memory."""

    #: The ``group`` message's text, or ``None`` when there is nothing to remember yet.
    text: str | None
    #: The newest message id the summary covers (0: none).
    covered_through: int


NOTHING = Recalled(None, 0)


@dataclass(frozen=True, slots=True)
class Remembered:
    """A conversation's summary (``None``: none yet) and every fact its character remembers
    there, about anyone."""

    summary: ConversationMemory | None
    facts: list[UserFact]


@dataclass(frozen=True, slots=True)
class MemoryItems:
    """What a character remembers in a conversation, as ``/memory`` lists it."""

    conversation_id: int
    character: Character
    #: The summary of what fell out of the window (``None``: none, or forgotten).
    summary: str | None
    #: What the character remembers about the one who asked, oldest first.
    facts: list[UserFact]


def memory_text(
    character: Character,
    summary: str | None,
    facts: Sequence[UserFact],
    names: dict[str, str],
) -> str | None:
    """The memory as the model reads it: the summary, then what ``character`` knows about
    each person (``names``: user id → display name), or ``None`` when both are empty."""
    parts = [summary.strip()] if summary and summary.strip() else []
    by_user: dict[str, list[str]] = {}
    for fact in facts:
        by_user.setdefault(fact.user_id, []).append(fact.text)
    if by_user:
        lines = [
            f"- {sanitize_name(names.get(user, user))}: {'; '.join(texts)}"
            for user, texts in by_user.items()
        ]
        parts.append(f"What {character.name} knows about the people here:\n" + "\n".join(lines))
    return "\n\n".join(parts) or None


class Recall:
    """Reads memory for turns and keeps it up to date in the background; one per manager."""

    def __init__(
        self,
        *,
        storage: Storage,
        client: M2HerClient,
        metrics: Metrics,
        limits: LimitGuard,
        settings: MemorySettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._storage = storage
        self._client = client
        self._metrics = metrics
        self._limits = limits
        self.settings = settings or MemorySettings()
        self._clock = clock
        #: The update running per conversation id (at most one each).
        self._updates: dict[int, asyncio.Task[None]] = {}

    async def fetch(
        self, conversation: Conversation, character: Character, policy: ChatPolicy
    ) -> Remembered | None:
        """Everything ``character`` remembers in ``conversation`` (``None`` with memory off),
        as :meth:`recalled` narrows it for a turn."""
        scope = self.scope(conversation, character, policy)
        if scope is None:
            return None
        return Remembered(*await self._storage.memory(scope))

    @staticmethod
    def scope(
        conversation: Conversation, character: Character, policy: ChatPolicy
    ) -> MemoryScope | None:
        """Whose memory a turn of ``character`` reads (``None`` with memory off); the turn
        reads it with its window (``Storage.turn_context``)."""
        return _scope(conversation, character, policy) if policy.memory.enabled else None

    @staticmethod
    def recalled(
        remembered: Remembered | None, character: Character, window: Sequence[WindowMessage]
    ) -> Recalled:
        """What a turn of ``character`` sends of ``remembered``: the summary, and the facts
        about the humans in ``window``."""
        if remembered is None:
            return NOTHING
        names = {m.author_id: m.author_name for m in window if m.role == "user"}
        summary = remembered.summary
        facts = [fact for fact in remembered.facts if fact.user_id in names]
        text = memory_text(character, summary.summary if summary else None, facts, names)
        return Recalled(text, summary.covered_through if summary else 0)

    async def items(
        self, conversation: Conversation, character: Character, user_id: str, policy: ChatPolicy
    ) -> MemoryItems:
        """The summary of ``conversation`` and what ``character`` remembers about
        ``user_id`` there (shared facts too where ``policy`` shares)."""
        summary, facts = await self._storage.memory(
            _scope(conversation, character, policy), [user_id]
        )
        text = summary.summary if summary and summary.summary.strip() else None
        return MemoryItems(conversation.id, character, text, facts)

    async def set_summary(self, conversation_id: int, text: str | None) -> bool:
        """Correct the summary (``text``), or with ``None`` forget it; it then starts again
        from what falls out next, never from what it covered."""
        return await self._storage.set_summary(conversation_id, text or "")

    async def set_fact(self, fact_id: int, user_id: str, text: str | None) -> bool:
        """Correct (``text``) or with ``None`` forget one of ``user_id``'s facts."""
        return await self._storage.set_fact(fact_id, user_id, text)

    def after_turn(
        self,
        conversation: Conversation,
        character: Character,
        author_id: str,
        window: Sequence[WindowMessage],
        kept: int,
        recalled: Recalled,
        policy: ChatPolicy,
        *,
        exempt: bool = False,
    ) -> asyncio.Task[None] | None:
        """Start updating the memory if messages fell out of the window (all but the newest
        ``kept`` of ``window``, and any older ones) that it does not cover; the update is
        paid by ``author_id`` (unless ``exempt``, an admin). Returns the update's task, or
        ``None`` when none was needed or one is already running."""
        if not policy.memory.enabled or not window or kept <= 0:
            return None
        whole = window[len(window) - kept :]
        fallen_through = min(m.id for m in whole) - 1
        if fallen_through <= recalled.covered_through or conversation.id in self._updates:
            return None
        # A little ahead of what fell, so the next turns need no update of their own.
        # Never the newest message: the one just answered.
        ahead = sorted(m.id for m in whole)[: min(self.settings.lookahead, len(whole) - 1)]
        through = max([fallen_through, *ahead])
        task = asyncio.create_task(
            self._update(conversation, character, author_id, through, policy, exempt)
        )
        self._updates[conversation.id] = task
        task.add_done_callback(lambda _: self._updates.pop(conversation.id, None))
        return task

    @property
    def updating(self) -> frozenset[int]:
        """The conversations whose memory update is running."""
        return frozenset(self._updates)

    async def settled(self) -> None:
        """Wait for the updates running now (and those they lead to) to end."""
        while self._updates:
            await asyncio.gather(*self._updates.values(), return_exceptions=True)

    async def aclose(self) -> None:
        """Stop the updates in flight (at shutdown): an unfinished one is simply redone by a
        later turn."""
        tasks = list(self._updates.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _update(
        self,
        conversation: Conversation,
        character: Character,
        author_id: str,
        through: int,
        policy: ChatPolicy,
        exempt: bool,
    ) -> None:
        """Fold the messages up to ``through`` into the summary, one call per
        :attr:`MemorySettings.transcript_tokens` of them, until done or something fails."""
        scope = _scope(conversation, character, policy)
        platform = conversation.platform
        try:
            while True:
                if not exempt:
                    refusal = await self._limits.budget_refusal(
                        conversation, author_id, policy.limits
                    )
                    if refusal is not None:
                        self._metrics.memory_update(platform, "over_budget")
                        return
                outcome = await self._update_once(scope, character, author_id, through)
                self._metrics.memory_update(platform, outcome)
                if outcome != "more":
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            # Never the turn's problem: the conversation goes on with its plain window.
            self._metrics.memory_update(platform, "failed")
            log.exception("updating the memory of conversation %s failed", conversation.id)

    async def _update_once(
        self, scope: MemoryScope, character: Character, author_id: str, through: int
    ) -> str:
        """One update call: ``"updated"``, ``"more"`` (updated, more to fold in), ``"lost"``
        (another update won, or its messages changed), ``"empty"`` (nothing to fold in),
        ``"failed"`` or ``"unreadable"``."""
        storage = self._storage
        summary, _ = await storage.memory(scope, [])
        covered = summary.covered_through if summary else 0
        if covered >= through:
            return "empty"
        batch = await storage.messages_after(scope.conversation_id, covered, through, limit=400)
        lines = self._fit(batch)
        if not lines:
            return "empty"
        humans = {m.author_id: m.author_name for m in lines if m.role == "user"}
        _, known = await storage.memory(scope, list(humans))
        names = {name: user for user, name in humans.items()}
        request = memory_request(
            character.name,
            previous=summary.summary if summary else "",
            facts=[(humans[f.user_id], f.text) for f in known],
            lines=[(m.author_name, _cut(m.text)) for m in lines],
            summary_words=self.settings.summary_words,
            max_tokens=self.settings.reply_tokens,
        )
        started = self._clock()
        try:
            result = await self._client.complete(request)
        except M2HerError as error:
            self._metrics.api_error(error.code, type(error).__name__, http_status=error.http_status)
            await storage.record_model_call(
                _memory_call(scope, author_id, character, started, self._clock(), error=error)
            )
            log.warning(
                "the memory update of conversation %s failed: %s", scope.conversation_id, error
            )
            return "failed"
        usage = result.usage
        await storage.record_model_call(
            _memory_call(
                scope,
                author_id,
                character,
                started,
                self._clock(),
                tokens=(usage.prompt_tokens, usage.completion_tokens, usage.total_tokens),
                trace_id=result.trace_id,
            )
        )
        self._metrics.memory_tokens(
            scope.platform, usage.prompt_tokens, usage.completion_tokens, usage.total_tokens
        )
        update = parse_memory_update(result.text)
        if update is None:
            log.warning(
                "the memory update of conversation %s answered no summary; memory unchanged",
                scope.conversation_id,
            )
            return "unreadable"
        newest = max(m.id for m in lines)
        record = MemoryUpdateRecord(
            summary=update.summary,
            expected_through=covered,
            covered_through=newest,
            read=len([m for m in batch if m.id <= newest]),
            facts=_facts_by_user(update, names),
        )
        if not await storage.save_memory(scope, record):
            return "lost"
        return "more" if newest < through else "updated"

    def _fit(self, batch: Sequence[WindowMessage]) -> list[WindowMessage]:
        """The oldest messages of ``batch`` (by id) that fit one call's transcript."""
        used, fitted = 0, list[WindowMessage]()
        for message in sorted(batch, key=lambda m: m.id):
            cost = estimate_message_tokens(_cut(message.text), message.author_name)
            if fitted and used + cost > self.settings.transcript_tokens:
                break
            fitted.append(message)
            used += cost
        ids = {m.id for m in fitted}
        # Back in conversation order, as the model should read them.
        return [m for m in batch if m.id in ids]


#: The most of one message an update reads, in characters: one huge message must not crowd
#: out the rest, nor overflow the call.
LINE_CHARS = 2000


def _cut(text: str) -> str:
    return text if len(text) <= LINE_CHARS else text[: LINE_CHARS - 1] + "…"


def _scope(conversation: Conversation, character: Character, policy: ChatPolicy) -> MemoryScope:
    return MemoryScope(
        conversation.id, conversation.platform, character.id, shared=policy.memory.shared
    )


def _facts_by_user(update: MemoryUpdate, names: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The update's facts as ``(user_id, fact)``, for the humans of its transcript only (a
    fact about a character, or about a name nobody here uses, is not a user's)."""
    return tuple((names[who], fact) for who, fact in update.facts if who in names)


def _memory_call(
    scope: MemoryScope,
    author_id: str,
    character: Character,
    started: float,
    ended: float,
    *,
    tokens: tuple[int, int, int] = (0, 0, 0),
    trace_id: str | None = None,
    error: M2HerError | None = None,
) -> ModelCall:
    prompt, completion, total = tokens
    return ModelCall(
        conversation_id=scope.conversation_id,
        author_id=author_id,
        character_id=character.id,
        model=MODEL,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        ok=error is None,
        error_code=error.code if error else None,
        trace_id=error.trace_id if error else trace_id,
        latency_ms=round((ended - started) * 1000),
        kind="memory",
    )
