"""The conversation manager: the engine every platform adapter calls.

Flow of a message (``docs/design.md``): store it → decide whether (and which character) answers →
note that a turn is owed → wait for the conversation's lane → run the turn
(:mod:`bot.conversation.turn`). Messages that arrive while a turn is in flight are all answered
by the next turn, in order. A turn owed but never run (a crash, a restart, an outage) is
resumed by :mod:`bot.conversation.recovery`. In a scene the director
(:mod:`bot.conversation.director`) picks who answers, and characters may answer each other
after the first answer, within the chat's ``scene_turns``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.characters.loader import CharacterLibrary
from bot.characters.prompt import Budget
from bot.characters.schema import Character
from bot.conversation.cache import TimedCache
from bot.conversation.claims import Claim, TurnClaims
from bot.conversation.director import Director, SceneLine, TypingNotes
from bot.conversation.incoming import ConversationKey, Incoming
from bot.conversation.limits import LimitGuard
from bot.conversation.notices import NoticeRetry, OwedNotices
from bot.conversation.nudges import NudgeDefaults, NudgeScheduler
from bot.conversation.policies import ChatPolicies
from bot.conversation.policy import ChatPolicy, Limits, PolicyTree
from bot.conversation.recall import MemoryItems, MemorySettings, Recall
from bot.conversation.recovery import Recovery, SinkFactory, conversation_key
from bot.conversation.settings import ServerSettings
from bot.conversation.sink import DeliveryFailed, ReplySink, SwipeControls, SwipeSink
from bot.conversation.swipes import SwipeAction, SwipeCheck, SwipeTarget
from bot.conversation.trigger import TriggerPolicy, TriggerSettings, addressed_character
from bot.conversation.turn import (
    ModerationHook,
    ModerationReport,
    Rework,
    TurnOutcome,
    TurnRequest,
    TurnRunner,
    TurnStatus,
    offer_controls,
    tell,
    withdraw,
)
from bot.conversation.users import UserData
from bot.conversation.visible import has_visible_text
from bot.errors import MainCharacterStays, OverLimit, Refusal
from bot.llm.client import M2HerClient
from bot.llm.roles import RoleSupport
from bot.observability.cost import Prices
from bot.observability.logs import new_turn_id
from bot.observability.metrics import Metrics
from bot.storage import (
    Alternatives,
    CallKind,
    Conversation,
    NewMessage,
    NudgePlan,
    NudgeSettings,
    NudgeState,
    OwedTurn,
    Storage,
    StorageError,
    StoredMessage,
)

__all__ = ["INTERRUPTED", "ConversationManager", "GreetingChooser", "ManagerSettings"]

log = logging.getLogger("bot.conversation")

#: What the users of a turn stopped by shutdown are told (it is resumed at the next start).
INTERRUPTED = "I was interrupted by a restart and will answer when I'm back."
#: How long telling them may take.
INTERRUPTED_NOTICE_SECONDS = 1.0

#: Picks a new conversation's first message among a character's greetings (never empty).
GreetingChooser = Callable[[Sequence[str]], str]
#: Who a channel's nudges are counted for in usage (a private chat's are its user's).
NUDGE_AUTHOR = "troupe:nudge"
#: How many recent messages choose who speaks first and whom it addresses.
NUDGE_LOOKBACK = 50


@dataclass(frozen=True, slots=True)
class ManagerSettings:
    """Engine-wide settings; chats and servers override trigger and moderation rules."""

    default_character: str | None = None
    #: Stored messages loaded per turn before the token budget trims them.
    history_limit: int = 200
    budget: Budget = field(default_factory=Budget)
    #: Trigger rules, moderation and limits per platform, server, chat and character
    #: (``troupe.yaml``); what admins set with chat commands wins over it.
    policy: PolicyTree = field(default_factory=PolicyTree)
    prices: Prices = field(default_factory=Prices)
    #: How long bindings and settings read from the database are trusted before re-reading
    #: (other processes may change them).
    cache_seconds: float = 5.0
    #: Take turns through the database, for several processes on one database. ``None``:
    #: on PostgreSQL (several processes are its point), not on SQLite.
    shared_database: bool | None = None
    #: How the notice about a reply the platform did not take is retried.
    notice_retry: NoticeRetry = field(default_factory=NoticeRetry)
    #: How long a turn's claim lasts unless renewed: a process that dies mid-turn holds the
    #: conversation that long (several processes on one database).
    claim_lease: timedelta = timedelta(seconds=30)
    #: Turns owed for messages younger than this are resumed (after a crash, a restart, an
    #: outage); older ones are given up.
    resume_max_age: timedelta = timedelta(minutes=15)
    #: What chats that let characters speak first follow unless they set their own.
    nudges: NudgeDefaults = field(default_factory=NudgeDefaults)
    #: How memory updates summarise what falls out of the window.
    memory: MemorySettings = field(default_factory=MemorySettings)


@dataclass(slots=True)
class _Lane:
    """Serialises one conversation inside this process: its intake, then its turns."""

    intake: asyncio.Lock = field(default_factory=asyncio.Lock)
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiters: int = 0
    #: The newest stored message id that a finished turn has already answered.
    answered_through: int = 0


@dataclass(frozen=True, slots=True)
class _Chain:
    """Characters answering each other after one human message in a scene."""

    conversation: Conversation
    scene: list[Character]
    #: The human's message: the chained turns are paid by and addressed to its author.
    incoming: Incoming
    sink: ReplySink
    message_id: int
    arrived: datetime

    def interrupted(self, lines: Sequence[SceneLine], typing: TypingNotes, now: datetime) -> bool:
        """Whether the chain must stop: a newer human message, a human typing since the
        message arrived, or the last line not a character's (its reply was not delivered)."""
        if not lines or lines[-1].character_id is None:
            return True
        if any(line.character_id is None and line.message_id > self.message_id for line in lines):
            return True
        return typing.typing_since(self.conversation_key, self.arrived, now)

    @property
    def conversation_key(self) -> ConversationKey:
        """Where the chain happens."""
        return self.incoming.key


class ConversationManager:
    """Turns incoming messages into character replies. Platform-neutral; one per process.

    Besides the turns, it holds what commands need: :attr:`policies` (each chat's rules and
    what admins set) and :attr:`users` (personas, usage, the moderation log, forgetting).
    """

    def __init__(
        self,
        *,
        storage: Storage,
        characters: CharacterLibrary,
        client: M2HerClient,
        settings: ManagerSettings | None = None,
        trigger: TriggerPolicy | None = None,
        on_moderation: ModerationHook | None = None,
        metrics: Metrics | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        choose_greeting: GreetingChooser = random.choice,
        roles: RoleSupport | None = None,
        director: Director | None = None,
    ) -> None:
        self._storage = storage
        self._now = now
        #: Who speaks in scenes of several characters.
        self.director = director or Director()
        self._typing = TypingNotes()
        self._characters = characters
        self._settings = settings = settings or ManagerSettings()
        self._trigger = trigger or TriggerPolicy()
        self._default = characters.default(settings.default_character)
        self._choose_greeting = choose_greeting
        self.metrics = metrics or Metrics(prices=settings.prices)
        #: Each chat's rules: ``troupe.yaml``, then what its admins set.
        self.policies = ChatPolicies(
            storage,
            settings.policy,
            conversation=self._conversation,
            cache_seconds=settings.cache_seconds,
        )
        #: What is kept about users: personas, usage, moderation events.
        self.users = UserData(storage, settings.prices)
        self._waiting: dict[str, int] = {}
        self._answering = True
        #: Set at the shutdown deadline: queued turns no longer start.
        self._interrupted = False
        #: The tasks running turns (cancelled at the shutdown deadline).
        self._turn_tasks: set[asyncio.Task[tuple[TurnOutcome, int]]] = set()
        self._turns_in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._owed_notices = OwedNotices(settings.notice_retry)
        self._limits = LimitGuard(storage, cache_seconds=settings.cache_seconds, now=now)
        #: What the characters remember beyond the window (read by turns and ``/memory``).
        self.recall = Recall(
            storage=storage,
            client=client,
            metrics=self.metrics,
            limits=self._limits,
            settings=settings.memory,
        )
        self._runner = TurnRunner(
            storage=storage,
            client=client,
            budget=settings.budget,
            history_limit=settings.history_limit,
            now=now,
            on_moderation=self._report_moderation,
            metrics=self.metrics,
            owe_notice=self._owed_notices.owe,
            roles=roles or RoleSupport(),
            recall=self.recall,
        )
        self._moderation_hooks: list[ModerationHook] = [on_moderation] if on_moderation else []
        self._lanes: dict[ConversationKey, _Lane] = {}
        shared = settings.shared_database
        if shared is None:
            shared = storage.backend == "postgresql"
        self._recovery = Recovery(
            storage,
            self._resume,
            max_age=settings.resume_max_age,
            # A claim of a process that died is found soon after its lease runs out.
            interval=settings.claim_lease.total_seconds() / 2,
            now=now,
        )
        self._claims = (
            TurnClaims(storage, lease=settings.claim_lease, on_late_release=self._recovery.wake)
            if shared
            else None
        )
        self._conversations: TimedCache[ConversationKey, Conversation] = TimedCache(
            settings.cache_seconds
        )
        #: Characters that speak first: the scheduler, and each chat's settings for commands.
        self.nudges = NudgeScheduler(storage, self._speak_first, defaults=settings.nudges, now=now)

    @property
    def characters(self) -> CharacterLibrary:
        """The loaded character library."""
        return self._characters

    @property
    def configured_default(self) -> str | None:
        """The default character the owner configured, if any."""
        return self._settings.default_character

    @property
    def default_character(self) -> Character:
        """The character a new conversation starts with."""
        return self._default

    def use_characters(self, characters: CharacterLibrary) -> None:
        """Switch to a newly loaded library (live reload); turns in flight finish as they were.

        Conversations bound to a character that is gone fall back to the default one.
        """
        self._characters = characters
        # Unconfigured, the default stays put while it exists: a new file never takes over.
        self._default = characters.default(self._settings.default_character, keep=self._default.id)

    # -- messages -------------------------------------------------------------------------

    async def handle(self, incoming: Incoming, sink: ReplySink) -> TurnOutcome:
        """Store ``incoming`` and, if the trigger policy says so, answer it through ``sink``.

        Returns once the turn that answers this message is over, whoever started it, and in a
        scene once the characters stopped answering each other after it (the outcome is the
        first answer's). A message that shows no text is no turn: it is not even stored.
        """
        if not has_visible_text(incoming.text):
            return TurnOutcome(TurnStatus.NO_TEXT)
        new_turn_id()
        with self._lane(incoming.key) as lane:
            # Taken before any other await, so messages are stored in the order they arrived.
            async with lane.intake:
                conversation = await self._conversation(incoming.key, incoming.server_id)
                scene = self._scene(conversation)
                policy = await self.policies.resolve(conversation)
                decision = self._trigger.decide(incoming, scene, policy.trigger)
                character = decision.character if decision.answer else None
                # While shutting down, an answered message is stored owed a turn for the next start.
                answering = self._answering
                refusal = None
                if character is not None and answering:
                    if character.id != conversation.character_id:
                        policy = await self.policies.resolve(conversation, character.id)
                    refusal = await self._limits.check(incoming, conversation, policy.limits)
                # Stored owed its turn in one transaction: no crash can leave it unowed.
                stored = await self._storage.add_message(
                    NewMessage(
                        conversation_id=conversation.id,
                        role="user",
                        author_id=incoming.author_id,
                        author_name=incoming.author_name,
                        text=incoming.text,
                        platform_message_id=incoming.platform_message_id,
                    ),
                    owed=character is not None and refusal is None,
                )
            if character is None:
                return TurnOutcome(TurnStatus.IGNORED, stored.id)
            if not answering:
                return TurnOutcome(TurnStatus.NOT_ANSWERED, stored.id)
            if refusal is not None:
                await self._refuse(character, incoming, sink, refusal, policy.limits)
                return TurnOutcome(TurnStatus.LIMITED, stored.id)
            arrived = self._now()

            async def prepare() -> TurnRequest:
                # Looked up once the previous turn is over: it may be the very message
                # replied to, and its platform id is stored when its turn ends.
                speaker = await self._replied_character(conversation, incoming, scene)
                if speaker is None:
                    speaker = await self._scene_speaker(conversation, scene, incoming.text)
                return self._request(conversation, speaker or character, incoming, sink, policy)

            outcome = await self._turn(lane, conversation, stored.id, prepare)
            if len(scene) > 1 and outcome.status is TurnStatus.ANSWERED:
                chain = _Chain(conversation, scene, incoming, sink, stored.id, arrived)
                await self._chain(lane, chain, policy.trigger)
            return outcome

    def human_typing(self, key: ConversationKey) -> None:
        """A human started typing in ``key`` (where the platform reports it): a scene's chain
        of characters answering each other stops before its next turn."""
        self._typing.note(key, self._now())

    async def _scene_speaker(
        self, conversation: Conversation, scene: list[Character], text: str
    ) -> Character | None:
        """In a scene, the director's pick for a human message ``text`` that names no
        character; ``None`` outside scenes or when a character is named."""
        if len(scene) < 2 or addressed_character(text, scene) is not None:
            return None
        lines = await self._scene_lines(conversation.id)
        return self.director.first(scene, lines, self._now()).character

    async def _scene_lines(self, conversation_id: int) -> list[SceneLine]:
        """The scene's recent lines, oldest first, as the director reads them."""
        window = await self._storage.history_window(
            conversation_id, self.director.weights.recent_lines
        )
        return [SceneLine(m.character_id, m.text, m.created_at, m.id) for m in window]

    async def _chain(self, lane: _Lane, chain: _Chain, rules: TriggerSettings) -> None:
        """Let characters answer each other after a human's message was answered: at most
        ``rules.scene_turns`` turns in all, each after ``rules.scene_pause_seconds``, ending as
        soon as a human writes or types, or nobody takes it up.

        Chained turns are not owed: after a crash the human's message stays answered and
        the chain is not resumed.
        """
        for _ in range(rules.scene_turns - 1):
            # The pause is the humans' chance to cut in (the chain ends if one types).
            await asyncio.sleep(rules.scene_pause_seconds)
            if not self._answering:
                return  # shutting down: no new turns
            lines = await self._scene_lines(chain.conversation.id)
            if chain.interrupted(lines, self._typing, self._now()):
                return
            outcome = await self._chained_turn(lane, chain, lines[-1].message_id)
            if outcome.status is not TurnStatus.ANSWERED:
                return

    async def _chained_turn(self, lane: _Lane, chain: _Chain, said_last: int) -> TurnOutcome:
        """One turn of ``chain``, answering the character's line ``said_last``, through the
        lane and the claim like any turn; ``IGNORED`` when nobody speaks after all."""
        conversation = chain.conversation

        async def prepare() -> TurnRequest | None:
            # Checked again with the lane held: a human may have spoken meanwhile.
            lines = await self._scene_lines(conversation.id)
            now = self._now()
            if chain.interrupted(lines, self._typing, now) or lines[-1].message_id != said_last:
                return None
            pick = self.director.next(chain.scene, lines, now)
            if pick is None:
                return None
            policy = await self.policies.resolve(conversation, pick.character.id)
            # The human's message counted against the rate limit already; chained turns
            # spend tokens only, and stop at the daily budgets.
            limits = dataclasses.replace(policy.limits, user_messages_per_minute=0)
            if await self._limits.check(chain.incoming, conversation, limits) is not None:
                return None
            return self._request(conversation, pick.character, chain.incoming, chain.sink, policy)

        return await self._turn(lane, conversation, said_last, prepare)

    def resume_with(self, platform: str, make_sink: SinkFactory) -> None:
        """``platform`` is connected: resume its owed turns (now, and whenever a claim may
        have expired) through the sinks ``make_sink`` makes."""
        if self._answering:
            self._recovery.register(platform, make_sink)
            self.nudges.register(platform, make_sink)

    async def _resume(self, owed: OwedTurn, sink: ReplySink) -> TurnOutcome | None:
        """Run the turn ``owed`` (found by :class:`Recovery`), as if its newest unanswered
        message had just come in."""
        new_turn_id()
        conversation, message = owed.conversation, owed.message
        assert message is not None, "recovery gives up turns whose messages are gone"
        key = conversation_key(owed)
        incoming = Incoming(
            key=key,
            author_id=message.author_id,
            author_name=message.author_name,
            text=message.text,
            is_direct=conversation.server_id is None,
            platform_message_id=message.platform_message_id,
            server_id=conversation.server_id,
        )
        try:
            with self._lane(key) as lane:
                scene = self._scene(conversation)
                # A resumed turn answers the message only: no chain follows it (design.md).
                character = addressed_character(message.text, scene) or (
                    await self._scene_speaker(conversation, scene, message.text) or scene[0]
                )
                policy = await self.policies.resolve(conversation, character.id)

                async def prepare() -> TurnRequest:
                    return self._request(conversation, character, incoming, sink, policy)

                return await self._turn(lane, conversation, message.id, prepare)
        except Exception:
            log.exception("the resumed turn in %s failed", key)
            return None

    async def _speak_first(self, plan: NudgePlan, note: str, sink: ReplySink) -> TurnOutcome:
        """A character speaks first in ``plan``'s conversation, told ``note``: a turn like
        any other (limits, lane, claim, moderation, usage as ``nudge``) with no message to
        answer. In a scene, the character that spoke least lately."""
        if not self._answering:
            return TurnOutcome(TurnStatus.NOT_ANSWERED)
        new_turn_id()
        stored = plan.conversation
        key = ConversationKey(stored.platform, stored.chat_id, stored.thread_id)
        conversation = await self._conversation(key)
        recent = await self._storage.history_window(conversation.id, NUDGE_LOOKBACK)
        character = _spoke_least_lately(self._scene(conversation), recent)
        human = next((m for m in reversed(recent) if m.role == "user"), None)
        incoming = Incoming(
            key=key,
            # A private chat's nudges are its user's (their budget, their usage, erased
            # with them); a channel's are the chat's and the server's.
            author_id=plan.settings.user_id or NUDGE_AUTHOR,
            author_name=human.author_name if human else "everyone",
            text="",
            is_direct=conversation.server_id is None,
            server_id=conversation.server_id,
        )
        policy = await self.policies.resolve(conversation, character.id)
        refusal = await self._limits.check(incoming, conversation, policy.limits)
        if refusal is not None:
            log.info("no nudge in %s: %s", key, refusal)
            return TurnOutcome(TurnStatus.LIMITED)
        request = self._request(
            conversation, character, incoming, sink, policy, note=note, kind="nudge"
        )
        with self._lane(key) as lane:
            async with self._queued(key.platform, lane):
                if self._interrupted:
                    return TurnOutcome(TurnStatus.NOT_ANSWERED)
                async with self._claimed(conversation.id):
                    ran = await self._run(request)
        return TurnOutcome(TurnStatus.NOT_ANSWERED) if ran is None else ran[0]

    async def nudge_plan(self, key: ConversationKey) -> NudgePlan:
        """Whether and when characters speak first in ``key``'s conversation (settings never
        set: nudges off, the defaults)."""
        conversation = await self._conversation(key)
        plan = await self.nudges.plan(conversation.id)
        return plan or NudgePlan(conversation, NudgeSettings(), NudgeState(), None, False)

    async def set_nudges(self, key: ConversationKey, settings: NudgeSettings) -> None:
        """Store ``key``'s nudge settings (checked by the caller); the scheduler follows."""
        conversation = await self._conversation(key)
        await self.nudges.save(conversation.id, settings)

    @contextlib.contextmanager
    def _lane(self, key: ConversationKey) -> Iterator[_Lane]:
        """``key``'s lane, kept while someone uses it."""
        lane = self._lanes.setdefault(key, _Lane())
        lane.waiters += 1
        try:
            yield lane
        finally:
            lane.waiters -= 1
            if lane.waiters == 0:
                del self._lanes[key]

    async def _turn(
        self,
        lane: _Lane,
        conversation: Conversation,
        message_id: int,
        prepare: Callable[[], Awaitable[TurnRequest | None]],
    ) -> TurnOutcome:
        """Run the turn that answers ``message_id``, once the lane and the claim are ours,
        unless an earlier turn answered it; ``prepare`` makes the request (``None``: no
        turn after all, e.g. a chain a human interrupted)."""
        waiting_since = time.monotonic()
        async with self._queued(conversation.platform, lane):
            if lane.answered_through >= message_id:
                return TurnOutcome(TurnStatus.ANSWERED_BY_BATCH, message_id)
            if self._interrupted:
                return TurnOutcome(TurnStatus.NOT_ANSWERED, message_id)  # still owed
            async with self._claimed(conversation.id) as claim:
                self.metrics.turn_waited(conversation.platform, time.monotonic() - waiting_since)
                if claim.answered_through >= message_id:
                    # A turn that started elsewhere (another process, or before a restart)
                    # already answered this message.
                    lane.answered_through = claim.answered_through
                    return TurnOutcome(TurnStatus.ANSWERED_BY_BATCH, message_id)
                request = await prepare()
                if request is None:
                    return TurnOutcome(TurnStatus.IGNORED, message_id)
                ran = await self._run(request)
                if ran is None:
                    return TurnOutcome(TurnStatus.NOT_ANSWERED, message_id)
                outcome, answered_through = ran
                claim.answered_through = max(claim.answered_through, answered_through)
            lane.answered_through = max(lane.answered_through, answered_through)
            return TurnOutcome(outcome.status, message_id, outcome.reply, outcome.error)

    @contextlib.asynccontextmanager
    async def _claimed(self, conversation_id: int) -> AsyncIterator[Claim]:
        """The conversation's turn: claimed through the database when processes share it.

        Either way the claim starts from what finished turns answered, and stores what this
        turn answered (nothing if it did not finish: the turn stays owed).
        """
        if self._claims is not None:
            async with self._claims.hold(conversation_id) as claim:
                yield claim
            return
        # One process: the lane keeps turns apart; the database remembers what was answered.
        claim = Claim(await self._storage.answered_through(conversation_id))
        answered = claim.answered_through
        yield claim
        if claim.answered_through > answered:
            await self._storage.mark_answered(conversation_id, claim.answered_through)

    def _request(
        self,
        conversation: Conversation,
        character: Character,
        incoming: Incoming,
        sink: ReplySink,
        policy: ChatPolicy,
        *,
        rework: Rework | None = None,
        note: str | None = None,
        kind: CallKind = "reply",
    ) -> TurnRequest:
        """The inputs of a turn under ``policy``: its moderation, the chat's world books and
        memory."""
        return TurnRequest(
            conversation,
            character,
            incoming,
            sink,
            ServerSettings(policy.moderation, policy.moderators_chat_id),
            rework=rework,
            note=note,
            kind=kind,
            lorebooks=self._characters.lorebooks(policy.lorebooks),
            policy=policy,
        )

    async def _run(self, request: TurnRequest) -> tuple[TurnOutcome, int] | None:
        """Run the turn in a task of its own, which shutdown may cancel: then ``None``,
        the users are told, and the turn stays owed."""
        task = asyncio.create_task(self._runner.run(request))
        self._turn_tasks.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the caller is cancelled, not just the turn
            await self._tell_interrupted(request.sink)
            return None
        except StorageError:
            # The database went away mid-turn: the turn stays owed; resume it once it is back.
            self._recovery.wake()
            raise
        finally:
            self._turn_tasks.discard(task)

    async def _tell_interrupted(self, sink: ReplySink) -> None:
        try:
            async with asyncio.timeout(INTERRUPTED_NOTICE_SECONDS):
                # The notice first: taking the partial reply down may wait for the chat's pace.
                await sink.notice(INTERRUPTED)
                await sink.retract()
        except Exception as error:  # best effort: the process is about to exit
            log.info("could not tell a chat its turn was interrupted: %r", error)

    async def aclose(self) -> None:
        """Stop the background work (at shutdown, before the platforms close): notices still
        waiting to tell a user that a reply was lost, looking for owed turns, retrying claim
        releases. Safe to call twice."""
        await self._owed_notices.aclose()
        await self.recall.aclose()
        await self._recovery.close()
        await self.nudges.close()
        if self._claims is not None:
            await self._claims.close()

    def stop_answering(self) -> None:
        """Shutdown has begun: store what still arrives (owed a turn at the next start), but
        start no new turns."""
        self._answering = False
        self._recovery.stop()
        self.nudges.stop()

    async def interrupt(self, within: float = INTERRUPTED_NOTICE_SECONDS + 0.5) -> bool:
        """The shutdown deadline: stop the turns still running (their users are told, and
        the turns stay owed) and start no queued ones; wait up to ``within`` seconds for
        them to wind up. ``False`` if some were still winding up."""
        self._interrupted = True
        for task in self._turn_tasks:
            task.cancel()
        return await self.drain(within)

    async def drain(self, within: float) -> bool:
        """Wait up to ``within`` seconds for the turns in flight (and queued) to finish.

        Returns ``False`` if some were still running at the deadline.
        """
        try:
            async with asyncio.timeout(within):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    @contextlib.asynccontextmanager
    async def _queued(self, platform: str, lane: _Lane) -> AsyncIterator[None]:
        """Hold ``lane``'s turn lock, counting who waits for it (the queue-depth metric)
        and every turn in flight (for :meth:`drain`)."""
        self._turns_in_flight += 1
        self._idle.clear()
        waiting = self._waiting
        try:
            waiting[platform] = waiting.get(platform, 0) + 1
            self.metrics.queue_depth(platform, waiting[platform])
            try:
                await lane.turn.acquire()
            finally:
                waiting[platform] -= 1
                self.metrics.queue_depth(platform, waiting[platform])
            try:
                yield
            finally:
                lane.turn.release()
        finally:
            self._turns_in_flight -= 1
            if self._turns_in_flight == 0:
                self._idle.set()

    async def greet(
        self, key: ConversationKey, sink: ReplySink, *, user_name: str, group: bool = False
    ) -> bool:
        """Post one of the main character's greetings (``greeting`` or an
        ``alternate_greetings`` entry, in a ``group`` chat a ``group_only_greetings`` one too)
        if the conversation has no history yet; whether it was delivered."""
        conversation = await self._conversation(key)
        character = self._character(conversation.character_id)
        greetings = character.greetings_for(group=group)
        if not greetings:
            return False
        # Checked and stored in the intake: a message arriving meanwhile comes after it.
        with self._lane(key) as lane:
            async with lane.intake:
                if await self._storage.history_window(conversation.id, 1):
                    return False
                chosen = self._choose_greeting(greetings)
                texts = [character.render(greeting, user=user_name) for greeting in greetings]
                text = character.render(chosen, user=user_name)
                greeting = await self._storage.add_message(
                    NewMessage(
                        conversation_id=conversation.id,
                        role="assistant",
                        author_id=f"character:{character.id}",
                        author_name=character.name,
                        text=text,
                        character_id=character.id,
                        delivery="pending",
                    )
                )
                # The other greetings are the first message's swipes.
                shown = list(greetings).index(chosen)
                if len(texts) > 1:
                    await self._storage.set_alternatives(greeting.id, texts, shown)
        controls = SwipeControls(greeting.id, shown, len(texts), generated=False)
        await sink.begin(character)
        failure = await self._runner.deliver(sink, greeting, text, key.platform, controls)
        return failure is None

    async def edit_message(
        self,
        key: ConversationKey,
        platform_message_id: str,
        text: str,
        sink: ReplySink | None = None,
    ) -> bool:
        """A user edited a message: the history the characters see follows. With ``sink``,
        the character's reply to it is regenerated if that reply is still the newest
        message."""
        async with self._after_intake(key):
            conversation = await self._conversation(key)
            message = await self._storage.find_by_platform_message_id(
                conversation.id, platform_message_id
            )
            edited = await self._storage.edit_message(conversation.id, platform_message_id, text)
        if edited and message is not None and sink is not None:
            await self._answer_again(key, message, sink)
        return edited

    async def delete_message(
        self, key: ConversationKey, platform_message_id: str, sink: ReplySink | None = None
    ) -> bool:
        """A user deleted a message: it leaves the history the characters see. With
        ``sink``, the character's reply to it is regenerated if that reply is still the
        newest message."""
        async with self._after_intake(key):
            conversation = await self._conversation(key)
            message = await self._storage.find_by_platform_message_id(
                conversation.id, platform_message_id
            )
            deleted = await self._storage.delete_message(conversation.id, platform_message_id)
        if deleted and message is not None and sink is not None:
            await self._answer_again(key, message, sink)
        return deleted

    async def _answer_again(
        self, key: ConversationKey, message: StoredMessage, sink: ReplySink
    ) -> None:
        """``message`` (a human's) changed: regenerate the reply to it if that reply is the
        conversation's newest message and answered it last."""
        if message.role != "user":
            return
        reply = await self._storage.last_reply(message.conversation_id)
        if reply is None or reply.reply_to_id != message.id:
            return

        async def still_newest(target: SwipeTarget | None) -> None:
            if target is None or not target.newest:
                raise _Stale

        author = (message.author_id, message.author_name)
        try:
            await self.swipe(
                key,
                SwipeAction.REGENERATE,
                sink,
                check=still_newest,
                message_id=reply.id,
                author=author,
            )
        except _Stale:
            log.info("an edited message's reply in %s is no longer the newest", key)
        except OverLimit as refusal:
            await tell(sink, str(refusal))

    # -- swipes ---------------------------------------------------------------------------

    async def swipe(
        self,
        key: ConversationKey,
        action: SwipeAction,
        sink: ReplySink,
        *,
        check: SwipeCheck,
        message_id: int | None = None,
        author: tuple[str, str] | None = None,
        channel_name: str | None = None,
    ) -> TurnOutcome:
        """Regenerate, browse or continue the character's message ``message_id`` (``None``:
        the conversation's last one) in place, as one of the conversation's turns.

        ``check`` sees the message first (``None`` when there is no such message) and raises
        a :class:`~bot.errors.Refusal` for what may not happen. A new text is written for
        the person the reply answered (``author``, id and name, when their message is gone)
        and counts against the limits like any turn (:class:`~bot.errors.OverLimit`).
        "Next" past the last alternative regenerates; a greeting's alternatives are the
        character's other greetings. A failure leaves the alternative shown before.
        """
        new_turn_id()
        conversation = await self._conversation(key)
        with self._lane(key) as lane:
            async with self._queued(key.platform, lane), self._claimed(conversation.id):
                target = await self._swipe_target(conversation, message_id)
                await check(target)
                assert target is not None, "the check refuses a swipe without a target"
                reply, alternatives = target.reply, target.alternatives
                character = self._character(reply.character_id or conversation.character_id)
                shown_as = tuple(await self._storage.platform_message_ids(reply))
                step = _browse_step(action, target)
                if step is not None:
                    position = max(0, alternatives.shown + step) % len(alternatives.texts)
                    return await self._show_alternative(sink, character, target, shown_as, position)
                policy = await self.policies.resolve(conversation, character.id)
                answered = None
                if reply.reply_to_id is not None:
                    answered = await self._storage.message(conversation.id, reply.reply_to_id)
                author_id, author_name = (
                    (answered.author_id, answered.author_name) if answered else author or ("", "")
                )
                incoming = Incoming(
                    key=key,
                    author_id=author_id,
                    author_name=author_name,
                    text=answered.text if answered else "",
                    is_direct=conversation.server_id is None,
                    server_id=conversation.server_id,
                    channel_name=channel_name,
                )
                refusal = await self._limits.check(incoming, conversation, policy.limits)
                if refusal is not None:
                    raise OverLimit(refusal)
                rework = Rework(
                    reply,
                    shown_as,
                    keep=action is SwipeAction.CONTINUE,
                    alternatives=len(alternatives.texts),
                    shown=alternatives.shown,
                )
                request = self._request(
                    conversation, character, incoming, sink, policy, rework=rework
                )
                ran = await self._run(request)
                return TurnOutcome(TurnStatus.NOT_ANSWERED) if ran is None else ran[0]

    async def _swipe_target(
        self, conversation: Conversation, message_id: int | None
    ) -> SwipeTarget | None:
        if message_id is None:
            reply = await self._storage.last_reply(conversation.id)
        else:
            reply = await self._storage.message(conversation.id, message_id)
        if reply is None or reply.role != "assistant" or reply.delivery != "delivered":
            return None
        answered_author = None
        if reply.reply_to_id is not None:
            answered = await self._storage.message(conversation.id, reply.reply_to_id)
            answered_author = answered.author_id if answered is not None else None
        return SwipeTarget(
            reply,
            answered_author,
            newest=await self._storage.is_newest(reply),
            alternatives=await self._storage.alternatives(reply),
        )

    async def _show_alternative(
        self,
        sink: ReplySink,
        character: Character,
        target: SwipeTarget,
        shown_as: tuple[str, ...],
        position: int,
    ) -> TurnOutcome:
        """Show another stored alternative of ``target`` in place (no model call)."""
        reply, alternatives = target.reply, target.alternatives
        text = alternatives.texts[position]
        if position == alternatives.shown or not isinstance(sink, SwipeSink):
            return TurnOutcome(TurnStatus.ANSWERED, reply.id, reply.text)
        await sink.begin_over(character, shown_as, reply.text, keep=False)
        controls = SwipeControls(reply.id, position, len(alternatives.texts), target.generated)
        await offer_controls(sink, controls)
        try:
            ids = await sink.finish(text)
        except DeliveryFailed as failure:
            log.warning("another alternative of %s was not shown: %s", reply.id, failure)
            await withdraw(sink)
            return TurnOutcome(TurnStatus.UNDELIVERED, reply.id)
        await self._storage.show_alternative(reply, position, ids)
        return TurnOutcome(TurnStatus.ANSWERED, reply.id, text)

    async def memory(self, key: ConversationKey, user_id: str) -> MemoryItems:
        """What the main character remembers in the conversation at ``key``: its summary and
        the facts about ``user_id`` (for ``/memory``)."""
        conversation = await self._conversation(key)
        character = self._character(conversation.character_id)
        policy = await self.policies.resolve(conversation, character.id)
        return await self.recall.items(conversation, character, user_id, policy)

    async def reset(self, key: ConversationKey) -> int:
        """Forget the conversation's history and memory; returns how many messages were
        deleted."""
        conversation = await self._conversation(key)
        return await self._storage.reset_conversation(conversation.id)

    @contextlib.asynccontextmanager
    async def _after_intake(self, key: ConversationKey) -> AsyncIterator[None]:
        # An edit or deletion that follows its message closely must not overtake the
        # storing of that message (still queued in the conversation's intake).
        lane = self._lanes.get(key)
        if lane is None:
            yield
            return
        async with lane.intake:
            yield

    async def character_of_message(
        self, key: ConversationKey, platform_message_id: str
    ) -> Character | None:
        """The character that posted ``platform_message_id`` here, if a character did."""
        conversation = await self._conversation(key)
        message = await self._storage.find_by_platform_message_id(
            conversation.id, platform_message_id
        )
        if message is None or message.character_id is None:
            return None
        if message.character_id not in self._characters:
            return None
        return self._characters.get(message.character_id)

    # -- characters and scenes ------------------------------------------------------------

    async def character_for(self, key: ConversationKey) -> Character:
        """The conversation's main character."""
        conversation = await self._conversation(key)
        return self._character(conversation.character_id)

    async def scene(self, key: ConversationKey) -> list[Character]:
        """Every character present, the main one first."""
        return self._scene(await self._conversation(key))

    async def set_character(self, key: ConversationKey, name: str) -> Character:
        """Make the character called ``name`` (id or name) the main one.

        Raises ``KeyError`` with a "did you mean" message for an unknown name.
        """
        character = self._characters.get(name)
        conversation = await self._conversation(key)
        await self._storage.bind_character(conversation.id, character.id)
        extras = [c for c in conversation.scene if c != character.id]
        if list(conversation.scene) != extras:
            await self._storage.set_scene(conversation.id, extras)
        self._conversations.drop(key)
        return character

    async def add_to_scene(self, key: ConversationKey, name: str) -> Character:
        """Bring another character into the conversation's scene."""
        character = self._characters.get(name)
        conversation = await self._conversation(key)
        if character.id != conversation.character_id and character.id not in conversation.scene:
            await self._storage.set_scene(conversation.id, [*conversation.scene, character.id])
            self._conversations.drop(key)
        return character

    async def remove_from_scene(self, key: ConversationKey, name: str) -> Character:
        """Send a character out of the scene; the main character stays (``MainCharacterStays``)."""
        character = self._characters.get(name)
        conversation = await self._conversation(key)
        if character.id == conversation.character_id:
            raise MainCharacterStays(
                f"{character.name} is the main character here; make another character the main "
                "one first."
            )
        if character.id in conversation.scene:
            remaining = [c for c in conversation.scene if c != character.id]
            await self._storage.set_scene(conversation.id, remaining)
            self._conversations.drop(key)
        return character

    # -- moderation and limits ------------------------------------------------------------

    def add_moderation_hook(self, hook: ModerationHook) -> Callable[[], None]:
        """Also call ``hook`` on every moderation event (e.g. an adapter that posts to a
        moderators' channel, started after the engine). Returns a function removing it."""
        self._moderation_hooks.append(hook)
        return lambda: self._moderation_hooks.remove(hook)

    async def _report_moderation(self, report: ModerationReport) -> None:
        for hook in list(self._moderation_hooks):
            try:
                await hook(report)
            except Exception:
                # One failing watcher must not keep the others from hearing of it.
                log.exception("a moderation hook failed for event %s", report.event.id)

    async def _refuse(
        self,
        character: Character,
        incoming: Incoming,
        sink: ReplySink,
        reason: str,
        limits: Limits,
    ) -> None:
        if not limits.in_character_notice:
            await tell(sink, reason)
            return
        await sink.begin(character)
        try:
            await sink.finish(character.render(character.limit_reply, user=incoming.author_name))
        except DeliveryFailed as failure:
            log.info("a limit reply was not delivered in %s: %s", incoming.key, failure)

    # -- helpers --------------------------------------------------------------------------

    async def _conversation(
        self, key: ConversationKey, server_id: str | None = None
    ) -> Conversation:
        cached = self._conversations.get(key)
        if cached is not None:
            return cached[0]
        # troupe.yaml may name the characters a chat starts with.
        main, *extras = self._settings.policy.chat_characters.get(
            (key.platform, key.chat_id), (self._default.id,)
        )
        conversation = await self._storage.conversation(
            key.platform,
            key.chat_id,
            key.thread_id,
            default_character=main,
            default_scene=extras,
            server_id=server_id,
        )
        return self._conversations.put(key, conversation)

    async def _replied_character(
        self, conversation: Conversation, incoming: Incoming, scene: list[Character]
    ) -> Character | None:
        # In a scene, a reply to one character's message is for that character.
        if len(scene) < 2 or not incoming.replies_to_bot or incoming.reply_to_message_id is None:
            return None
        message = await self._storage.find_by_platform_message_id(
            conversation.id, incoming.reply_to_message_id
        )
        if message is None:
            return None
        return next((c for c in scene if c.id == message.character_id), None)

    def _scene(self, conversation: Conversation) -> list[Character]:
        main = self._character(conversation.character_id)
        extras = [self._characters.get(c) for c in conversation.scene if c in self._characters]
        return [main, *(c for c in extras if c.id != main.id)]

    def _character(self, character_id: str) -> Character:
        if character_id in self._characters:
            return self._characters.get(character_id)
        # The file was removed since the binding was made: fall back rather than go silent.
        return self._default


class _Stale(Refusal):
    """A reply to regenerate after an edit is no longer the newest message."""


def _browse_step(action: SwipeAction, target: SwipeTarget) -> int | None:
    """How far ``action`` moves among ``target``'s stored alternatives; ``None`` when it
    writes a new text instead (regenerate, continue, or "next" past a reply's last)."""
    alternatives: Alternatives = target.alternatives
    last = alternatives.shown == len(alternatives.texts) - 1
    match action:
        case SwipeAction.PREVIOUS:
            return -1 if alternatives.shown > 0 else 0
        case SwipeAction.NEXT if not (last and target.generated):
            return 1
        case SwipeAction.REGENERATE if not target.generated:
            return 1  # a greeting: the next greeting
    return None


def _spoke_least_lately(scene: list[Character], recent: Sequence[StoredMessage]) -> Character:
    """The character of ``scene`` whose last message in ``recent`` is the oldest (one that
    did not speak at all first; the main character on a tie)."""
    last = {m.character_id: m.id for m in recent if m.character_id is not None}
    return min(scene, key=lambda character: last.get(character.id, 0))
