"""One turn: read the context, build the prompt, stream the reply, store what happened.

:class:`TurnRunner` holds what every turn needs; :meth:`TurnRunner.run` is called by the
manager with the conversation's lane held, so at most one turn of a conversation runs at once.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from bot.characters.budget import NEWEST_MESSAGE_TOKENS
from bot.characters.lore.book import Lorebook
from bot.characters.prompt import (
    Budget,
    CharacterTooLong,
    HistoryEntry,
    Prompt,
    PromptTooLong,
    TokenEstimator,
    build_prompt,
)
from bot.characters.schema import Character
from bot.conversation.cache import TimedCache
from bot.conversation.incoming import Incoming
from bot.conversation.moderation import ModerationAction, ModerationPolicy
from bot.conversation.policy import ChatPolicy
from bot.conversation.recall import NOTHING, Recall, Remembered
from bot.conversation.runaway import ReadReply, character_cap, read_capped
from bot.conversation.settings import ServerSettings
from bot.conversation.sink import DeliveryFailed, ReplySink, SwipeControls, SwipeSink
from bot.conversation.visible import has_visible_text
from bot.llm.client import M2HerClient
from bot.llm.errors import ContextTooLong, InputBlocked, M2HerError, OutputBlocked
from bot.llm.roles import RoleSupport
from bot.llm.tokens import estimate_message_tokens, estimate_text_tokens
from bot.llm.types import MODEL, ChatResult, SensitiveType, Usage
from bot.observability.metrics import Metrics
from bot.storage import (
    CallKind,
    Conversation,
    ModelCall,
    ModerationEvent,
    NewMessage,
    NewModerationEvent,
    Storage,
    StoredMessage,
    WindowMessage,
)

log = logging.getLogger("bot.conversation")

UNEXPECTED = "Something went wrong on our side; please try again."
#: Said when the model's reply was empty (nothing is shown or stored).
NO_REPLY = "No reply came; please try again."


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
    #: The message shows no text (empty, spaces, zero-width characters): not stored, no turn.
    NO_TEXT = "no_text"
    #: The model's reply was empty: nothing shown or stored, the user asked to try again.
    EMPTY_REPLY = "empty_reply"
    #: The reply is stored, but the platform did not take it: it stays out of prompts.
    UNDELIVERED = "undelivered"


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
#: Called with the conversation id and the sink of a turn whose reply was not delivered.
OweNotice = Callable[[int, ReplySink], None]


@dataclass(frozen=True, slots=True)
class Rework:
    """A turn that rewrites a reply already shown instead of adding one: it regenerates it
    (a new alternative, written without the old one in the prompt) or, with ``keep``,
    continues it (the model goes on from the reply's end)."""

    reply: StoredMessage
    #: The platform messages that show the reply, its first part first.
    shown_as: tuple[str, ...]
    keep: bool
    #: How many alternatives the reply has (a regeneration adds one) and which is shown.
    alternatives: int = 1
    shown: int = 0


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """The inputs of one turn."""

    conversation: Conversation
    character: Character
    incoming: Incoming
    sink: ReplySink
    server: ServerSettings
    #: Set when the turn rewrites a reply shown (its sink is then a :class:`SwipeSink`).
    rework: Rework | None = None
    #: An instruction for this turn alone (a character speaking first), sent at the end of
    #: the ``system`` message.
    note: str | None = None
    #: What the model call is for, in usage: ``reply`` or ``nudge``.
    kind: CallKind = "reply"
    #: World books the chat's admins attached, scanned after the character's own.
    lorebooks: tuple[Lorebook, ...] = ()
    #: The chat's whole policy (memory and limits, for the memory update).
    policy: ChatPolicy = field(default_factory=ChatPolicy)


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
        owe_notice: OweNotice,
        roles: RoleSupport,
        recall: Recall | None = None,
    ) -> None:
        self._storage = storage
        self._client = client
        self._budget = budget
        self._history_limit = history_limit
        self._now = now
        self._on_moderation = on_moderation
        self._metrics = metrics
        self._owe_notice = owe_notice
        self._roles = roles
        self._recall = recall
        self._estimator = TokenEstimator()
        # Who was told about their cool-down, each kept for their policy's window only.
        self._cooldown_told: TimedCache[tuple[str, str], bool] = TimedCache(
            0, clock=lambda: now().timestamp()
        )

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
        recall = self._recall
        incoming, policy = turn.incoming, turn.server.moderation
        context = await self._storage.turn_context(
            turn.conversation.id,
            limit=self._history_limit,
            platform=incoming.key.platform,
            author_id=incoming.author_id,
            flags_since=self._now() - policy.cooldown_window,
            memory=None
            if recall is None
            else recall.scope(turn.conversation, turn.character, turn.policy),
        )
        window = context.history
        answered_through = max((m.id for m in window), default=0)
        if turn.rework is not None and not turn.rework.keep:
            # A regeneration is written as if the old reply had never been said.
            window = [m for m in window if m.id != turn.rework.reply.id]
        if 0 < policy.cooldown_after <= context.recent_flags:
            await self._cooldown_notice(incoming, turn.sink, policy)
            return TurnOutcome(TurnStatus.COOLDOWN), answered_through
        recalled = NOTHING
        if recall is not None and context.memory is not None:
            recalled = recall.recalled(Remembered(*context.memory), turn.character, window)
        history = [_history_entry(message, turn.character) for message in window]

        def prompt_within(budget: Budget) -> Prompt:
            return build_prompt(
                turn.character,
                history,
                user_name=incoming.author_name,
                user_persona=context.persona,
                group_name=incoming.channel_name,
                budget=budget,
                estimator=self._estimator,
                fold_roles=self._roles.fold,
                note=turn.note,
                lorebooks=turn.lorebooks,
                # A full window may not hold the whole conversation (lore counts replies).
                history_complete=len(window) < self._history_limit,
                memory=recalled.text,
            )

        character_at_fault = False
        try:
            prompt = prompt_within(self._budget)
            outcome = await self._call(turn, prompt, window, answered_through, first_token)
            if isinstance(outcome.error, ContextTooLong):
                # M2-her counts this prompt as longer than the estimate: once more with half
                # the history (its refusal names no figure to calibrate from).
                prompt = prompt_within(self._smaller_budget(prompt))
                outcome = await self._call(turn, prompt, window, answered_through, first_token)
        except PromptTooLong as error:
            character_at_fault = isinstance(error, CharacterTooLong)
            too_long = ContextTooLong("prompt does not fit the token budget")
            outcome = TurnOutcome(TurnStatus.FAILED, error=too_long)
        if isinstance(outcome.error, ContextTooLong):
            await tell(turn.sink, self._too_long_notice(turn, history, character_at_fault))
        if recall is not None and outcome.status is TurnStatus.ANSWERED:
            # In the background, once the reply is out: it never delays one.
            recall.after_turn(
                turn.conversation,
                turn.character,
                incoming.author_id,
                window,
                prompt.history_kept,
                recalled,
                turn.policy,
                exempt=incoming.author_is_admin,
            )
        return outcome, answered_through

    def _smaller_budget(self, refused: Prompt) -> Budget:
        """The budget that leaves the ``refused`` prompt half of its history's tokens (the
        safety margin takes the rest), for the same reply size."""
        kept = refused.request.messages[len(refused.request.messages) - refused.history_kept :]
        target = refused.estimated_tokens - self._estimator.estimate(kept) // 2
        completion = refused.request.max_completion_tokens or self._budget.max_completion_tokens
        margin = self._budget.context_window - completion - target
        return dataclasses.replace(
            self._budget, max_completion_tokens=completion, safety_margin=margin
        )

    def _too_long_notice(
        self, turn: TurnRequest, history: Sequence[HistoryEntry], character_at_fault: bool
    ) -> str:
        """What a turn too long for the model tells the chat: only a newest message longer
        than the few lines every character leaves room for is the user's to shorten."""
        newest_is_long = bool(history) and (
            estimate_message_tokens(history[-1].text) > NEWEST_MESSAGE_TOKENS
        )
        if newest_is_long and not character_at_fault:
            return PromptTooLong.user_message
        log.error(
            "character %r leaves no room in M2-her's window for a short message and its "
            "reply; `troupe check` measures it",
            turn.character.id,
        )
        return CharacterTooLong.user_message

    async def _call(
        self,
        turn: TurnRequest,
        prompt: Prompt,
        window: Sequence[WindowMessage],
        answered_through: int,
        first_token: list[float],
    ) -> TurnOutcome:
        sink, rework = turn.sink, turn.rework
        started = time.monotonic()
        if rework is not None and isinstance(sink, SwipeSink):
            old = rework.reply.text
            await sink.begin_over(turn.character, rework.shown_as, old, keep=rework.keep)
        else:
            await sink.begin(turn.character)
        # A continuation is shown after the old text, a space between unless one is there.
        joined: list[str] = []

        async def show(piece: str) -> None:
            if not first_token:
                first_token.append(time.monotonic())
            if rework is not None and rework.keep and not joined and piece:
                joined.append(_joiner(rework.reply.text, piece))
                piece = joined[0] + piece
            await sink.delta(piece)

        cap = character_cap(prompt.request)
        try:
            read = await read_capped(self._client.stream(prompt.request), cap, show)
        except M2HerError as error:
            self._metrics.api_error(error.code, type(error).__name__, http_status=error.http_status)
            await self._storage.record_model_call(self._model_call(turn, started, error=error))
            return await self._failed(turn, error, window)
        except Exception:
            log.exception("turn failed in %s", turn.incoming.key)
            await withdraw(sink)
            await tell(sink, UNEXPECTED)
            return TurnOutcome(TurnStatus.FAILED)

        platform = turn.conversation.platform
        if read.cut:
            self._metrics.reply_cut(platform)
            log.warning(
                "the reply in %s ran past %d characters (%d tokens asked); cut there",
                turn.incoming.key,
                cap,
                prompt.request.max_completion_tokens or 0,
            )
        call = self._model_call(turn, started, read=read, prompt=prompt)
        if not has_visible_text(read.text):
            await self._storage.record_model_call(call)
            await self._account(turn, prompt, call, read, window)
            await withdraw(sink)
            await tell(sink, NO_REPLY)
            return TurnOutcome(TurnStatus.EMPTY_REPLY)
        if rework is not None:
            return await self._rewrite(turn, rework, prompt, call, read, window)
        # Stored before it is shown, so that the reply and its usage survive a crash; it
        # enters prompts only once delivered.
        reply = await self._storage.add_reply(
            NewMessage(
                conversation_id=turn.conversation.id,
                role="assistant",
                author_id=f"character:{turn.character.id}",
                author_name=turn.character.name,
                text=read.text,
                character_id=turn.character.id,
                token_estimate=prompt.estimated_tokens,
                reply_to_id=answered_through or None,
                delivery="pending",
            ),
            call,
        )
        await self._account(turn, prompt, call, read, window)
        failure = await self.deliver(sink, reply, read.text, platform)
        if failure is not None:
            if not failure.permanent:
                self._owe_notice(turn.conversation.id, sink)
            return TurnOutcome(TurnStatus.UNDELIVERED, reply=read.text)
        return TurnOutcome(TurnStatus.ANSWERED, reply=read.text)

    async def _rewrite(
        self,
        turn: TurnRequest,
        rework: Rework,
        prompt: Prompt,
        call: ModelCall,
        read: ReadReply,
        window: Sequence[WindowMessage],
    ) -> TurnOutcome:
        """Store what a regeneration or continuation wrote, then show it in place of the
        old reply; if the platform does not take it, the old reply stays shown."""
        reply, sink = rework.reply, turn.sink
        if rework.keep:
            text = reply.text + _joiner(reply.text, read.text) + read.text
            await self._storage.record_model_call(replace(call, reply_message_id=reply.id))
            position, count = rework.shown, rework.alternatives
        else:
            text = read.text
            position = await self._storage.add_alternative(reply, text, call)
            count = position + 1
        await self._account(turn, prompt, call, read, window)
        await offer_controls(sink, SwipeControls(reply.id, position, count, generated=True))
        try:
            ids = await sink.finish(text)
        except DeliveryFailed as failure:
            log.warning("a rewritten reply %s was not shown: %s", reply.id, failure)
            await withdraw(sink)
            return TurnOutcome(TurnStatus.UNDELIVERED, reply=text)
        if rework.keep:
            await self._storage.extend_reply(reply, text, ids)
        else:
            await self._storage.show_alternative(reply, position, ids)
        return TurnOutcome(TurnStatus.ANSWERED, reply=text)

    async def deliver(
        self,
        sink: ReplySink,
        reply: StoredMessage,
        text: str,
        platform: str,
        controls: SwipeControls | None = None,
    ) -> DeliveryFailed | None:
        """Show the stored ``reply`` as ``text`` through ``sink`` (after its ``begin``) and
        record how it went: delivered with its platform ids (its swipe ``controls`` shown
        with it: by default those of a new reply), or undelivered (counted and logged; the
        failure is returned)."""
        await offer_controls(sink, controls or SwipeControls(reply.id, 0, 1, generated=True))
        try:
            ids = await sink.finish(text)
        except DeliveryFailed as failure:
            await self._storage.set_undelivered(reply.id)
            self._metrics.reply_undelivered(platform)
            if failure.permanent:
                log.info("reply %s not delivered; the chat refuses the bot: %s", reply.id, failure)
            else:
                log.warning("reply %s not delivered: %s", reply.id, failure)
            return failure
        await self._storage.set_delivered(reply, ids)
        return None

    async def _account(
        self,
        turn: TurnRequest,
        prompt: Prompt,
        call: ModelCall,
        read: ReadReply,
        window: Sequence[WindowMessage],
    ) -> None:
        """Count a finished call's usage, calibrate the estimate, flag the input if told."""
        self._metrics.tokens(
            turn.conversation.platform,
            call.prompt_tokens,
            call.completion_tokens,
            call.total_tokens,
        )
        result = read.result
        if result is None:
            return
        if prompt_tokens := _reported_prompt_tokens(result):
            self._estimator.observe(prompt.request.messages, prompt_tokens)
        if result.flags.input_sensitive:
            await self._flag_input(turn, window, result.flags.input_sensitive_type)

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
        await withdraw(turn.sink)
        if isinstance(error, ContextTooLong):
            return TurnOutcome(TurnStatus.FAILED, error=error)  # the turn says whose fault
        await tell(turn.sink, error.user_message)
        return TurnOutcome(TurnStatus.FAILED, error=error)

    async def _moderated(
        self, turn: TurnRequest, action: ModerationAction, error: M2HerError
    ) -> None:
        character = turn.character
        if action is ModerationAction.IN_CHARACTER and turn.rework is not None:
            # The old reply stays shown: say why the new one is not, instead of a new reply.
            action = ModerationAction.NOTICE
        if action is ModerationAction.IN_CHARACTER:
            name = turn.incoming.author_name
            await withdraw(turn.sink, character.render(character.blocked_reply, user=name))
            return
        await withdraw(turn.sink)
        if action is ModerationAction.NOTICE:
            await tell(turn.sink, error.user_message)

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
        if self._cooldown_told.get(who) is None:
            window = policy.cooldown_window.total_seconds()
            self._cooldown_told.put(who, True, seconds=window)
            await tell(sink, policy.cooldown_notice())

    def _model_call(
        self,
        turn: TurnRequest,
        started: float,
        *,
        read: ReadReply | None = None,
        prompt: Prompt | None = None,
        error: M2HerError | None = None,
    ) -> ModelCall:
        result = read.result if read else None
        if result is not None:
            usage = result.usage
        elif read is not None and prompt is not None:
            # A cut stream never reported its usage: estimate what it cost.
            completion = estimate_text_tokens(read.text)
            total = prompt.estimated_tokens + completion
            usage = Usage(prompt.estimated_tokens, completion, total)
        else:
            usage = Usage()
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
            cut=read is not None and read.cut,
            kind=turn.kind,
        )


async def tell(sink: ReplySink, text: str) -> None:
    """Post a notice; one the platform does not take is logged, not raised."""
    try:
        await sink.notice(text)
    except DeliveryFailed as failure:
        log.info("a notice was not delivered: %s", failure)


async def withdraw(sink: ReplySink, replacement: str | None = None) -> None:
    """Retract what was shown of a reply (saying ``replacement`` instead); a platform that
    fails at it is logged, not raised: the turn is over either way."""
    try:
        await sink.retract(replacement)
    except Exception:
        # Whatever the platform's library raised: this layer cannot name its errors.
        log.warning("could not withdraw a reply", exc_info=True)


async def offer_controls(sink: ReplySink, controls: SwipeControls) -> None:
    """Show swipe ``controls`` with the reply the sink's next ``finish`` shows, where the
    platform has them; a failure is logged, not raised: the reply itself still goes out."""
    if not isinstance(sink, SwipeSink):
        return
    try:
        await sink.offer_controls(controls)
    except Exception:
        # Whatever the platform's library raised: this layer cannot name its errors.
        log.warning("could not offer swipe controls", exc_info=True)


def _joiner(old: str, new: str) -> str:
    """What goes between a reply and its continuation: a space unless one is there."""
    return "" if not old or old[-1:].isspace() or new[:1].isspace() else " "


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
