"""One turn: read the context, build the prompt, stream the reply, store what happened.

:class:`TurnRunner` holds what every turn needs; :meth:`TurnRunner.run` is called by the
manager with the conversation's lane held, so at most one turn of a conversation runs at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.characters.prompt import (
    Budget,
    HistoryEntry,
    Prompt,
    PromptTooLong,
    TokenEstimator,
    build_prompt,
)
from bot.characters.schema import Character
from bot.conversation.incoming import Incoming
from bot.conversation.moderation import ModerationAction, ModerationPolicy
from bot.conversation.settings import ServerSettings
from bot.conversation.sink import ReplySink
from bot.llm.client import M2HerClient
from bot.llm.errors import ContextTooLong, InputBlocked, M2HerError, OutputBlocked
from bot.llm.tokens import estimate_text_tokens
from bot.llm.types import MODEL, ChatResult, SensitiveType, Usage
from bot.observability.metrics import Metrics
from bot.storage import (
    Conversation,
    ModelCall,
    ModerationEvent,
    NewMessage,
    NewModerationEvent,
    Storage,
    WindowMessage,
)

log = logging.getLogger("bot.conversation")

UNEXPECTED = "Something went wrong on our side; please try again."


class TurnStatus(StrEnum):
    """How :meth:`ConversationManager.handle` ended for one message."""

    ANSWERED = "answered"
    #: Stored, but the trigger policy decided not to answer.
    IGNORED = "ignored"
    #: Stored and answered together with others by a turn that another message started.
    ANSWERED_BY_BATCH = "answered_by_batch"
    #: The author is cooling down after repeated moderation flags.
    COOLDOWN = "cooldown"
    #: A rate limit or a daily token budget was reached.
    LIMITED = "limited"
    #: Stored, but the bot is shutting down and starts no new turns.
    NOT_ANSWERED = "not_answered"
    BLOCKED_INPUT = "blocked_input"
    BLOCKED_OUTPUT = "blocked_output"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """What happened to one incoming message."""

    status: TurnStatus
    message_id: int | None = None
    reply: str | None = None
    error: M2HerError | None = None


@dataclass(frozen=True, slots=True)
class ModerationReport:
    """A moderation event as it happened, for whoever watches (a moderators' channel)."""

    event: ModerationEvent
    incoming: Incoming
    character: Character
    settings: ServerSettings


ModerationHook = Callable[[ModerationReport], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """The inputs of one turn."""

    conversation: Conversation
    character: Character
    incoming: Incoming
    sink: ReplySink
    server: ServerSettings


class TurnRunner:
    """Runs turns; shared by every conversation of a manager."""

    def __init__(
        self,
        *,
        storage: Storage,
        client: M2HerClient,
        budget: Budget,
        history_limit: int,
        now: Callable[[], datetime],
        on_moderation: ModerationHook | None,
        metrics: Metrics,
    ) -> None:
        self._storage = storage
        self._client = client
        self._budget = budget
        self._history_limit = history_limit
        self._now = now
        self._on_moderation = on_moderation
        self._metrics = metrics
        self._estimator = TokenEstimator()
        self._cooldown_told: dict[tuple[str, str], datetime] = {}

    async def run(self, turn: TurnRequest) -> tuple[TurnOutcome, int]:
        """Run ``turn``; returns its outcome and the newest message id it answered."""
        platform = turn.conversation.platform
        started = time.monotonic()
        self._metrics.turn_started(platform)
        first_token: list[float] = []
        outcome = TurnOutcome(TurnStatus.FAILED)
        try:
            outcome, answered_through = await self._run(turn, first_token)
            return outcome, answered_through
        finally:
            self._metrics.turn_finished(
                platform,
                str(outcome.status),
                time.monotonic() - started,
                first_token[0] - started if first_token else None,
            )

    async def _run(self, turn: TurnRequest, first_token: list[float]) -> tuple[TurnOutcome, int]:
        incoming, policy = turn.incoming, turn.server.moderation
        context = await self._storage.turn_context(
            turn.conversation.id,
            limit=self._history_limit,
            platform=incoming.key.platform,
            author_id=incoming.author_id,
            flags_since=self._now() - policy.cooldown_window,
        )
        window = context.history
        answered_through = max((m.id for m in window), default=0)
        if 0 < policy.cooldown_after <= context.recent_flags:
            await self._cooldown_notice(incoming, turn.sink, policy)
            return TurnOutcome(TurnStatus.COOLDOWN), answered_through
        try:
            prompt = build_prompt(
                turn.character,
                [_history_entry(message, turn.character) for message in window],
                user_name=incoming.author_name,
                user_persona=context.persona,
                group_name=incoming.channel_name,
                budget=self._budget,
                estimator=self._estimator,
            )
        except PromptTooLong:
            too_long = ContextTooLong("prompt does not fit the token budget")
            await turn.sink.notice(too_long.user_message)
            return TurnOutcome(TurnStatus.FAILED, error=too_long), answered_through
        outcome = await self._call(turn, prompt, window, answered_through, first_token)
        return outcome, answered_through

    async def _call(
        self,
        turn: TurnRequest,
        prompt: Prompt,
        window: Sequence[WindowMessage],
        answered_through: int,
        first_token: list[float],
    ) -> TurnOutcome:
        sink = turn.sink
        started = time.monotonic()
        await sink.begin(turn.character)
        try:
            stream = self._client.stream(prompt.request)
            async for piece in stream:
                if not first_token:
                    first_token.append(time.monotonic())
                await sink.delta(piece)
            result = stream.result
        except M2HerError as error:
            self._metrics.api_error(error.code, type(error).__name__)
            await self._storage.record_model_call(self._model_call(turn, started, error=error))
            return await self._failed(turn, error, window)
        except Exception:
            log.exception("turn failed in %s", turn.incoming.key)
            await sink.retract()
            await sink.notice(UNEXPECTED)
            return TurnOutcome(TurnStatus.FAILED)

        reply = await self._storage.add_reply(
            NewMessage(
                conversation_id=turn.conversation.id,
                role="assistant",
                author_id=f"character:{turn.character.id}",
                author_name=turn.character.name,
                text=result.text,
                character_id=turn.character.id,
                token_estimate=prompt.estimated_tokens,
                reply_to_id=answered_through or None,
            ),
            self._model_call(turn, started, result),
        )
        usage = result.usage
        self._metrics.tokens(
            turn.conversation.platform,
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens,
        )
        if prompt_tokens := _reported_prompt_tokens(result):
            self._estimator.observe(prompt.request.messages, prompt_tokens)
        if result.flags.input_sensitive:
            await self._flag_input(turn, window, result.flags.input_sensitive_type)
        ids = await sink.finish(result.text)
        if ids:
            await self._storage.set_platform_message_id(reply.id, ids[0])
        return TurnOutcome(TurnStatus.ANSWERED, reply=result.text)

    async def _failed(
        self, turn: TurnRequest, error: M2HerError, window: Sequence[WindowMessage]
    ) -> TurnOutcome:
        policy = turn.server.moderation
        if isinstance(error, InputBlocked):
            await self._flag_input(turn, window, error.sensitive_type, error)
            await self._moderated(turn, policy.on_blocked_input, error)
            return TurnOutcome(TurnStatus.BLOCKED_INPUT, error=error)
        if isinstance(error, OutputBlocked):
            await self._record_flag(turn, "output", error.sensitive_type, error)
            await self._moderated(turn, policy.on_blocked_output, error)
            return TurnOutcome(TurnStatus.BLOCKED_OUTPUT, error=error)
        log.warning("M2-her call failed in %s: %s", turn.incoming.key, error)
        # A part-streamed reply must never pass for a complete one.
        await turn.sink.retract()
        await turn.sink.notice(error.user_message)
        return TurnOutcome(TurnStatus.FAILED, error=error)

    async def _moderated(
        self, turn: TurnRequest, action: ModerationAction, error: M2HerError
    ) -> None:
        character = turn.character
        if action is ModerationAction.IN_CHARACTER:
            name = turn.incoming.author_name
            await turn.sink.retract(character.render(character.blocked_reply, user=name))
            return
        await turn.sink.retract()
        if action is ModerationAction.NOTICE:
            await turn.sink.notice(error.user_message)

    async def _flag_input(
        self,
        turn: TurnRequest,
        window: Sequence[WindowMessage],
        sensitive_type: SensitiveType | int,
        error: M2HerError | None = None,
    ) -> None:
        # The newest human message is what the model judged; keep it out of later prompts.
        flagged = max((m for m in window if m.role == "user"), key=lambda m: m.id, default=None)
        if flagged is not None:
            await self._storage.flag_message(flagged.id, int(sensitive_type))
        await self._record_flag(turn, "input", sensitive_type, error, flagged)

    async def _record_flag(
        self,
        turn: TurnRequest,
        direction: str,
        sensitive_type: SensitiveType | int,
        error: M2HerError | None,
        message: WindowMessage | None = None,
    ) -> None:
        code = int(sensitive_type)
        known = SensitiveType.parse(code)
        conversation = turn.conversation
        event = await self._storage.record_moderation_event(
            NewModerationEvent(
                conversation_id=conversation.id,
                platform=conversation.platform,
                chat_id=conversation.chat_id,
                author_id=message.author_id if message else turn.incoming.author_id,
                direction="input" if direction == "input" else "output",
                sensitive_type=code,
                type_name=known.label if isinstance(known, SensitiveType) else f"unknown ({code})",
                message_id=message.id if message else None,
                trace_id=error.trace_id if error else None,
            )
        )
        self._metrics.sensitive_flag(event.direction, event.type_name)
        if self._on_moderation is not None:
            report = ModerationReport(event, turn.incoming, turn.character, turn.server)
            try:
                await self._on_moderation(report)
            except Exception:
                log.exception("the moderation hook failed for event %s", event.id)

    async def _cooldown_notice(
        self, incoming: Incoming, sink: ReplySink, policy: ModerationPolicy
    ) -> None:
        # Tell a cooled-down author once per window, not on every message.
        who = (incoming.key.platform, incoming.author_id)
        now = self._now()
        told = self._cooldown_told.get(who)
        if told is None or now - told >= policy.cooldown_window:
            self._cooldown_told[who] = now
            await sink.notice(policy.cooldown_notice())

    def _model_call(
        self,
        turn: TurnRequest,
        started: float,
        result: ChatResult | None = None,
        error: M2HerError | None = None,
    ) -> ModelCall:
        usage = result.usage if result else Usage()
        return ModelCall(
            conversation_id=turn.conversation.id,
            author_id=turn.incoming.author_id,
            character_id=turn.character.id,
            model=MODEL,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
            ok=error is None,
            error_code=error.code if error else None,
            trace_id=result.trace_id if result else error.trace_id if error else None,
            latency_ms=round((time.monotonic() - started) * 1000),
        )


def _history_entry(message: WindowMessage, speaker: Character) -> HistoryEntry:
    if message.role == "assistant" and message.character_id == speaker.id:
        return HistoryEntry("assistant", speaker.name, message.text)
    # Humans and *other* characters both reach the model as named `user` turns.
    return HistoryEntry("user", message.author_name, message.text)


def _reported_prompt_tokens(result: ChatResult) -> int:
    """The prompt size the API reported; derived from ``total_tokens`` when that is all."""
    usage = result.usage
    if usage.prompt_tokens:
        return usage.prompt_tokens
    if usage.total_tokens:
        return max(0, usage.total_tokens - estimate_text_tokens(result.text))
    return 0
