"""The conversation manager: one turn at a time per conversation, from message to stored reply.

Flow of a turn (``DESIGN.md``): store the user's message → decide whether to answer → wait for
the conversation's lane → build the prompt from stored history → stream the reply into the
:class:`~bot.conversation.sink.ReplySink` → store the reply, usage and any moderation flags.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from bot.characters.loader import CharacterLibrary
from bot.characters.prompt import (
    Budget,
    HistoryEntry,
    Prompt,
    PromptTooLong,
    TokenEstimator,
    build_prompt,
)
from bot.characters.schema import Character
from bot.conversation.incoming import ConversationKey, Incoming
from bot.conversation.moderation import ModerationAction, ModerationPolicy
from bot.conversation.sink import ReplySink
from bot.conversation.trigger import TriggerPolicy, TriggerSettings
from bot.llm.client import M2HerClient
from bot.llm.errors import ContextTooLong, InputBlocked, M2HerError, OutputBlocked
from bot.llm.tokens import estimate_text_tokens
from bot.llm.types import MODEL, ChatResult, SensitiveType, Usage
from bot.storage import (
    Conversation,
    ForgetReport,
    ModelCall,
    NewMessage,
    NewModerationEvent,
    Storage,
    StoredMessage,
)

log = logging.getLogger("bot.conversation")

_UNEXPECTED = "Something went wrong on our side; please try again."


class TurnStatus(StrEnum):
    """How :meth:`ConversationManager.handle` ended for one message."""

    ANSWERED = "answered"
    #: Stored, but the trigger policy decided not to answer.
    IGNORED = "ignored"
    #: Stored and answered together with others by a turn that another message started.
    ANSWERED_BY_BATCH = "answered_by_batch"
    #: The author is cooling down after repeated moderation flags.
    COOLDOWN = "cooldown"
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
class ManagerSettings:
    """Engine-wide settings; platforms may override trigger and moderation per chat."""

    default_character: str | None = None
    #: Stored messages loaded per turn before the token budget trims them.
    history_limit: int = 400
    budget: Budget = field(default_factory=Budget)
    moderation: ModerationPolicy = field(default_factory=ModerationPolicy)
    trigger: TriggerSettings = field(default_factory=TriggerSettings)


@dataclass(slots=True)
class _Lane:
    """Serialises one conversation inside this process: its intake, then its turns."""

    intake: asyncio.Lock = field(default_factory=asyncio.Lock)
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiters: int = 0
    #: The newest stored message id that a finished turn has already answered.
    answered_through: int = 0


class ConversationManager:
    """Turns incoming messages into character replies. Platform-neutral; one per process."""

    def __init__(
        self,
        *,
        storage: Storage,
        characters: CharacterLibrary,
        client: M2HerClient,
        settings: ManagerSettings | None = None,
        trigger: TriggerPolicy | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._storage = storage
        self._characters = characters
        self._client = client
        self._settings = settings or ManagerSettings()
        self._trigger = trigger or TriggerPolicy()
        self._now = now
        self._estimator = TokenEstimator()
        self._lanes: dict[ConversationKey, _Lane] = {}
        self._cooldown_told: dict[tuple[str, str], datetime] = {}
        self._default = characters.default(self._settings.default_character)

    @property
    def characters(self) -> CharacterLibrary:
        """The loaded character library."""
        return self._characters

    @property
    def default_character(self) -> Character:
        """The character a new conversation starts with."""
        return self._default

    # -- messages -------------------------------------------------------------------------

    async def handle(self, incoming: Incoming, sink: ReplySink) -> TurnOutcome:
        """Store ``incoming`` and, if the trigger policy says so, answer it through ``sink``.

        Returns once the turn that answers this message is over, whoever started it.
        """
        lane = self._lanes.setdefault(incoming.key, _Lane())
        lane.waiters += 1
        try:
            # Taken before any other await, so messages are stored in the order they arrived.
            async with lane.intake:
                conversation = await self._conversation(incoming.key)
                stored = await self._storage.add_message(
                    NewMessage(
                        conversation_id=conversation.id,
                        role="user",
                        author_id=incoming.author_id,
                        author_name=incoming.author_name,
                        text=incoming.text,
                        platform_message_id=incoming.platform_message_id,
                    )
                )
            main = self._character(conversation.character_id)
            decision = self._trigger.decide(incoming, [main], self._settings.trigger)
            if not decision.answer:
                return TurnOutcome(TurnStatus.IGNORED, stored.id)
            if await self._cooling_down(incoming):
                await self._cooldown_notice(incoming, sink)
                return TurnOutcome(TurnStatus.COOLDOWN, stored.id)
            async with lane.turn:
                if lane.answered_through >= stored.id:
                    return TurnOutcome(TurnStatus.ANSWERED_BY_BATCH, stored.id)
                outcome, answered_through = await self._turn(
                    conversation, decision.character or main, incoming, sink
                )
                lane.answered_through = max(lane.answered_through, answered_through)
                return TurnOutcome(outcome.status, stored.id, outcome.reply, outcome.error)
        finally:
            lane.waiters -= 1
            if lane.waiters == 0:
                del self._lanes[incoming.key]

    async def greet(self, key: ConversationKey, sink: ReplySink, *, user_name: str) -> bool:
        """Post the character's greeting if the conversation has no history yet."""
        conversation = await self._conversation(key)
        if await self._storage.history_window(conversation.id, 1):
            return False
        character = self._character(conversation.character_id)
        if not character.greeting:
            return False
        text = character.render(character.greeting, user=user_name)
        await self._storage.add_message(self._reply_message(conversation, character, text))
        await sink.begin(character)
        await sink.finish(text)
        return True

    # -- commands -------------------------------------------------------------------------

    async def character_for(self, key: ConversationKey) -> Character:
        """The conversation's main character."""
        conversation = await self._conversation(key)
        return self._character(conversation.character_id)

    async def set_character(self, key: ConversationKey, name: str) -> Character:
        """Bind the character called ``name`` (id or name). ``KeyError`` says "did you mean"."""
        character = self._characters.get(name)
        conversation = await self._conversation(key)
        await self._storage.bind_character(conversation.id, character.id)
        return character

    async def reset(self, key: ConversationKey) -> int:
        """Forget the conversation's history; returns how many messages were deleted."""
        conversation = await self._conversation(key)
        return await self._storage.reset_conversation(conversation.id)

    async def set_persona(self, platform: str, user_id: str, persona: str | None) -> None:
        """Set (or with ``None`` clear) who the user is in the story (sent as ``user_system``)."""
        await self._storage.set_persona(platform, user_id, persona)

    async def persona(self, platform: str, user_id: str) -> str | None:
        """The user's own persona, if set."""
        return await self._storage.get_persona(platform, user_id)

    async def forget(self, platform: str, user_id: str) -> ForgetReport:
        """Erase everything stored about the user on that platform."""
        return await self._storage.forget_user(platform, user_id)

    # -- the turn -------------------------------------------------------------------------

    async def _turn(
        self,
        conversation: Conversation,
        character: Character,
        incoming: Incoming,
        sink: ReplySink,
    ) -> tuple[TurnOutcome, int]:
        window = await self._storage.history_window(conversation.id, self._settings.history_limit)
        answered_through = window[-1].id if window else 0
        try:
            prompt = await self._prompt(conversation, character, incoming, window)
        except PromptTooLong:
            too_long = ContextTooLong("prompt does not fit the token budget")
            await sink.notice(too_long.user_message)
            return TurnOutcome(TurnStatus.FAILED, error=too_long), answered_through

        started = time.monotonic()
        await sink.begin(character)
        try:
            stream = self._client.stream(prompt.request)
            async for piece in stream:
                await sink.delta(piece)
            result = stream.result
        except M2HerError as error:
            await self._storage.record_model_call(
                self._model_call(conversation, incoming, character, started, error=error)
            )
            return await self._failed(conversation, character, incoming, sink, error, window), (
                answered_through
            )
        except Exception:
            log.exception("turn failed in %s", incoming.key)
            await sink.retract()
            await sink.notice(_UNEXPECTED)
            return TurnOutcome(TurnStatus.FAILED), answered_through

        reply = await self._storage.add_reply(
            self._reply_message(conversation, character, result.text, prompt),
            self._model_call(conversation, incoming, character, started, result),
        )
        if prompt_tokens := _reported_prompt_tokens(result):
            self._estimator.observe(prompt.request.messages, prompt_tokens)
        if result.flags.input_sensitive:
            await self._flag_input(
                conversation, incoming, window, result.flags.input_sensitive_type
            )
        ids = await sink.finish(result.text)
        if ids:
            await self._storage.set_platform_message_id(reply.id, ids[0])
        return TurnOutcome(TurnStatus.ANSWERED, reply=result.text), answered_through

    async def _prompt(
        self,
        conversation: Conversation,
        character: Character,
        incoming: Incoming,
        window: Sequence[StoredMessage],
    ) -> Prompt:
        persona = await self._storage.get_persona(incoming.key.platform, incoming.author_id)
        history = [self._history_entry(message, character) for message in window]
        return build_prompt(
            character,
            history,
            user_name=incoming.author_name,
            user_persona=persona,
            group_name=incoming.channel_name,
            budget=self._settings.budget,
            estimator=self._estimator,
        )

    async def _failed(
        self,
        conversation: Conversation,
        character: Character,
        incoming: Incoming,
        sink: ReplySink,
        error: M2HerError,
        window: Sequence[StoredMessage],
    ) -> TurnOutcome:
        policy = self._settings.moderation
        if isinstance(error, InputBlocked):
            await self._flag_input(conversation, incoming, window, error.sensitive_type, error)
            await self._moderated(sink, character, policy.on_blocked_input, error, incoming)
            return TurnOutcome(TurnStatus.BLOCKED_INPUT, error=error)
        if isinstance(error, OutputBlocked):
            await self._record_flag(conversation, incoming, "output", error.sensitive_type, error)
            await self._moderated(sink, character, policy.on_blocked_output, error, incoming)
            return TurnOutcome(TurnStatus.BLOCKED_OUTPUT, error=error)
        log.warning("M2-her call failed in %s: %s", incoming.key, error)
        # A part-streamed reply must never pass for a complete one.
        await sink.retract()
        await sink.notice(error.user_message)
        return TurnOutcome(TurnStatus.FAILED, error=error)

    async def _moderated(
        self,
        sink: ReplySink,
        character: Character,
        action: ModerationAction,
        error: M2HerError,
        incoming: Incoming,
    ) -> None:
        if action is ModerationAction.IN_CHARACTER:
            await sink.retract(character.render(character.blocked_reply, user=incoming.author_name))
            return
        await sink.retract()
        if action is ModerationAction.NOTICE:
            await sink.notice(error.user_message)

    # -- moderation -----------------------------------------------------------------------

    async def _flag_input(
        self,
        conversation: Conversation,
        incoming: Incoming,
        window: Sequence[StoredMessage],
        sensitive_type: SensitiveType | int,
        error: M2HerError | None = None,
    ) -> None:
        # The newest human message is what the model judged; keep it out of later prompts.
        flagged = next((m for m in reversed(window) if m.role == "user"), None)
        if flagged is not None:
            await self._storage.flag_message(flagged.id, int(sensitive_type))
        await self._record_flag(
            conversation,
            incoming,
            "input",
            sensitive_type,
            error,
            message_id=flagged.id if flagged else None,
            author_id=flagged.author_id if flagged else None,
        )

    async def _record_flag(
        self,
        conversation: Conversation,
        incoming: Incoming,
        direction: str,
        sensitive_type: SensitiveType | int,
        error: M2HerError | None,
        *,
        message_id: int | None = None,
        author_id: str | None = None,
    ) -> None:
        code = int(sensitive_type)
        known = SensitiveType.parse(code)
        name = known.label if isinstance(known, SensitiveType) else f"unknown ({code})"
        await self._storage.record_moderation_event(
            NewModerationEvent(
                conversation_id=conversation.id,
                platform=conversation.platform,
                chat_id=conversation.chat_id,
                author_id=author_id or incoming.author_id,
                direction="input" if direction == "input" else "output",
                sensitive_type=code,
                type_name=name,
                message_id=message_id,
                trace_id=error.trace_id if error else None,
            )
        )

    async def _cooling_down(self, incoming: Incoming) -> bool:
        policy = self._settings.moderation
        if policy.cooldown_after <= 0:
            return False
        since = self._now() - policy.cooldown_window
        flags = await self._storage.count_moderation_events(
            incoming.key.platform, incoming.author_id, since
        )
        return flags >= policy.cooldown_after

    async def _cooldown_notice(self, incoming: Incoming, sink: ReplySink) -> None:
        # Tell a cooled-down author once per window, not on every message.
        who = (incoming.key.platform, incoming.author_id)
        now = self._now()
        told = self._cooldown_told.get(who)
        if told is None or now - told >= self._settings.moderation.cooldown_window:
            self._cooldown_told[who] = now
            await sink.notice(self._settings.moderation.cooldown_notice())

    # -- helpers --------------------------------------------------------------------------

    async def _conversation(self, key: ConversationKey) -> Conversation:
        return await self._storage.conversation(
            key.platform, key.chat_id, key.thread_id, default_character=self._default.id
        )

    def _character(self, character_id: str) -> Character:
        try:
            return self._characters.get(character_id)
        except KeyError:
            # The file was removed since the binding was made: fall back rather than go silent.
            log.warning("character %r is gone; using %r", character_id, self._default.id)
            return self._default

    def _history_entry(self, message: StoredMessage, speaker: Character) -> HistoryEntry:
        if message.role == "assistant" and message.character_id == speaker.id:
            return HistoryEntry("assistant", speaker.name, message.text)
        # Humans and *other* characters both reach the model as named `user` turns.
        return HistoryEntry("user", message.author_name, message.text)

    def _reply_message(
        self,
        conversation: Conversation,
        character: Character,
        text: str,
        prompt: Prompt | None = None,
    ) -> NewMessage:
        return NewMessage(
            conversation_id=conversation.id,
            role="assistant",
            author_id=f"character:{character.id}",
            author_name=character.name,
            text=text,
            character_id=character.id,
            token_estimate=prompt.estimated_tokens if prompt else None,
        )

    def _model_call(
        self,
        conversation: Conversation,
        incoming: Incoming,
        character: Character,
        started: float,
        result: ChatResult | None = None,
        error: M2HerError | None = None,
    ) -> ModelCall:
        usage = result.usage if result else Usage()
        return ModelCall(
            conversation_id=conversation.id,
            author_id=incoming.author_id,
            character_id=character.id,
            model=MODEL,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
            ok=error is None,
            error_code=error.code if error else None,
            trace_id=result.trace_id if result else error.trace_id if error else None,
            latency_ms=round((time.monotonic() - started) * 1000),
        )


def _reported_prompt_tokens(result: ChatResult) -> int:
    """The prompt size the API reported; derived from ``total_tokens`` when that is all."""
    usage = result.usage
    if usage.prompt_tokens:
        return usage.prompt_tokens
    if usage.total_tokens:
        return max(0, usage.total_tokens - estimate_text_tokens(result.text))
    return 0
