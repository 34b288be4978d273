"""The nudge scheduler: one task per process that lets characters speak first when due.

It keeps nothing of its own between passes: each pass reads every conversation where nudges
are on (:meth:`bot.storage.nudges.NudgeStore.plans`), computes what is due
(:func:`~bot.conversation.nudges.rules.next_nudge`) and sleeps until the earliest due time,
or until :meth:`NudgeScheduler.wake` (settings changed, a nudge finished), at most
``resync`` seconds (another process may have changed settings). It never busy-loops: a pass
that finds nothing due sleeps until something will be.

A due nudge is first *claimed* in the database (a compare-and-set on the state it was
computed from), so when several processes share PostgreSQL exactly one sends it; then it
runs as a turn through the manager (lane, claim, limits, moderation, usage) and the
platform's sink. A nudge that fails is logged and counted as sent; the scheduler goes on. A
chat that refuses the bot for good (blocked, DMs closed, gone) has its nudges turned off,
and that is remembered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import partial

from bot.characters.schema import Character
from bot.conversation.incoming import ConversationKey
from bot.conversation.nudges.rules import Due, NudgeDefaults, NudgeKind, NudgeRules, next_nudge
from bot.conversation.recovery import SinkFactory
from bot.conversation.sink import DeliveryFailed, ReplySink
from bot.storage import NudgePlan, NudgeSettings, Storage, StorageError

__all__ = ["NudgeScheduler", "ProactiveSink", "Speak"]

log = logging.getLogger("bot.conversation.nudges")

#: Runs a proactive turn in ``plan``'s conversation with the instruction ``note``, through
#: ``sink``; returns once the turn is over.
Speak = Callable[[NudgePlan, str, ReplySink], Awaitable[object]]

#: The shortest pause between two passes, however often they are asked for.
MIN_PAUSE = 0.05


class ProactiveSink:
    """A sink for a turn nobody asked for: it says nothing but the reply itself (no error
    notices, no in-character refusals out of nowhere), and notes when the chat refuses the
    bot for good."""

    def __init__(self, sink: ReplySink) -> None:
        self._sink = sink
        #: The platform said the chat will not take messages again.
        self.refused: DeliveryFailed | None = None

    async def begin(self, character: Character) -> None:
        """Passed on."""
        await self._sink.begin(character)

    async def delta(self, text: str) -> None:
        """Passed on."""
        await self._sink.delta(text)

    async def finish(self, text: str) -> Sequence[str]:
        """Passed on; a permanent refusal is noted."""
        try:
            return await self._sink.finish(text)
        except DeliveryFailed as failure:
            if failure.permanent:
                self.refused = failure
            raise

    async def retract(self, replacement: str | None = None) -> None:
        """Withdraws what was shown, without saying anything instead."""
        await self._sink.retract()

    async def notice(self, text: str) -> None:
        """Nobody asked: a notice would come out of nowhere. Logged only."""
        log.info("a proactive turn's notice is not posted: %s", text)


class NudgeScheduler:
    """Lets characters speak first where admins (channels) or users (private chats) allow it."""

    def __init__(
        self,
        storage: Storage,
        speak: Speak,
        *,
        defaults: NudgeDefaults,
        now: Callable[[], datetime],
        resync: float = 60.0,
    ) -> None:
        self._storage = storage
        self._speak = speak
        self.defaults = defaults
        self._now = now
        self._resync = resync
        self._factories: dict[str, SinkFactory] = {}
        self._only: dict[str, ConversationKey] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        #: Nudges being sent, by conversation id (a pass does not start one twice).
        self._sending: dict[int, asyncio.Task[None]] = {}
        #: Passes made so far (each reads the plans once): tests check it does not spin.
        self.passes = 0

    @property
    def sending(self) -> int:
        """How many nudges are being sent now."""
        return len(self._sending)

    def now(self) -> datetime:
        """The time now, by the scheduler's clock."""
        return self._now()

    def register(
        self, platform: str, make_sink: SinkFactory, *, only: ConversationKey | None = None
    ) -> None:
        """Send ``platform``'s nudges through ``make_sink``, starting now; ``only`` those of
        that one conversation (a terminal session), if given."""
        self._factories[platform] = make_sink
        if only is None:
            self._only.pop(platform, None)
        else:
            self._only[platform] = only
        if self._loop is None or self._loop.done():
            self._loop = asyncio.create_task(self._run())
        self.wake()

    def wake(self) -> None:
        """Look again now (settings changed, a nudge finished)."""
        self._wake.set()

    def stop(self) -> None:
        """Send no more nudges (shutdown); those under way are the manager's turns."""
        self._factories.clear()
        if self._loop is not None:
            self._loop.cancel()

    async def close(self) -> None:
        """:meth:`stop`, and wait until the loop is over."""
        self.stop()
        if self._loop is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        for task in list(self._sending.values()):
            task.cancel()
        await asyncio.gather(*self._sending.values(), return_exceptions=True)

    async def plan(self, conversation_id: int) -> NudgePlan | None:
        """The conversation's nudge settings and state (``None``: never set)."""
        return await self._storage.nudges.plan(conversation_id)

    async def save(self, conversation_id: int, settings: NudgeSettings) -> None:
        """Store ``settings`` (checked by the caller) and reconsider every due time."""
        await self._storage.nudges.save(conversation_id, settings, now=self._now())
        self.wake()

    async def refused(self, platform: str, chat_id: str) -> None:
        """The platform says the chat refuses the bot (the user blocked it, the bot was
        removed): no more nudges there, remembered."""
        if await self._storage.nudges.block_chat(platform, chat_id, at=self._now()):
            log.info("no more nudges in %s:%s: the chat refuses the bot", platform, chat_id)
            self.wake()

    async def run_due(self) -> datetime | None:
        """One pass: start every nudge due now; the earliest due time still to come."""
        now = self._now()
        earliest: datetime | None = None
        for plan in await self._storage.nudges.plans():
            conversation = plan.conversation
            platform = conversation.platform
            if platform not in self._factories or conversation.id in self._sending:
                continue
            if platform in self._only and _key(plan) != self._only[platform]:
                continue
            try:
                rules = NudgeRules.of(plan.settings, self.defaults)
            except ValueError as error:
                log.warning(
                    "nudges in conversation %s are misconfigured: %s", conversation.id, error
                )
                continue
            due = next_nudge(plan, rules, now)
            if due is None:
                continue
            if due.at > now:
                earliest = due.at if earliest is None else min(earliest, due.at)
                continue
            task = asyncio.create_task(self._send(plan, rules, due, now))
            self._sending[conversation.id] = task
            task.add_done_callback(partial(self._sent, conversation.id))
        self.passes += 1
        return earliest

    def _sent(self, conversation_id: int, _: object) -> None:
        self._sending.pop(conversation_id, None)
        self.wake()  # its state changed: its next due time with it

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            pause = self._resync
            try:
                earliest = await self.run_due()
            except StorageError as error:
                log.warning("could not look for due nudges: %s", error)
            except Exception:
                log.exception("looking for due nudges failed")
            else:
                if earliest is not None:
                    until = (earliest - self._now()).total_seconds()
                    pause = min(pause, max(until, 0.0))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(pause, MIN_PAUSE)):
                    await self._wake.wait()

    async def _send(self, plan: NudgePlan, rules: NudgeRules, due: Due, now: datetime) -> None:
        key = _key(plan)
        try:
            await self._send_once(plan, rules, due, now, key)
        except Exception:
            # One failing nudge must not stop the others (it is counted: no retry storm).
            log.exception("the nudge in %s failed", key)

    async def _send_once(
        self, plan: NudgePlan, rules: NudgeRules, due: Due, now: datetime, key: ConversationKey
    ) -> None:
        nudges, conversation_id = self._storage.nudges, plan.conversation.id
        greeting_at = due.at if due.kind is NudgeKind.GREETING else None
        sent = rules.sent_on(plan, due.at)
        day = rules.local_day(due.at)
        if not rules.allows(plan, due.at):
            # A greeting at a quiet hour, or on a day that had enough: skipped, not delayed.
            await nudges.claim(
                conversation_id,
                plan.state,
                sent_at=None,
                day=day,
                sent_today=sent,
                greeting_at=greeting_at,
            )
            log.info("the greeting due in %s at %s is skipped", key, due.at)
            return
        claimed = await nudges.claim(
            conversation_id,
            plan.state,
            sent_at=now,
            day=day,
            sent_today=sent + 1,
            greeting_at=greeting_at,
        )
        if not claimed:
            return  # another process took it, or nudges were changed meanwhile
        sink = await self._factories[key.platform](key)
        if sink is None:
            log.info("no more nudges in %s: the chat is gone", key)
            await nudges.block(conversation_id, at=self._now())
            return
        proactive = ProactiveSink(sink)
        log.info("a character speaks first in %s (%s)", key, due.kind)
        await self._speak(plan, _note(due.kind, rules, now), proactive)
        if proactive.refused is not None:
            log.info("no more nudges in %s: %s", key, proactive.refused)
            await nudges.block(conversation_id, at=self._now())


def _key(plan: NudgePlan) -> ConversationKey:
    conversation = plan.conversation
    return ConversationKey(conversation.platform, conversation.chat_id, conversation.thread_id)


def _note(kind: NudgeKind, rules: NudgeRules, now: datetime) -> str:
    """The instruction of a proactive turn (the end of the ``system`` message)."""
    local = now.astimezone(rules.zone)
    when = f"It is {local:%A, %H:%M} where this chat is."
    if kind is NudgeKind.GREETING:
        return (
            f"{when} Greet the chat now, in character, with one short message that fits the "
            "time of day and what was said before. Do not mention being asked to."
        )
    return (
        f"{when} Nobody has said anything here for a while. Start a conversation now, in "
        "character: one short message that opens a topic the others can answer, following "
        "on from what was said before if it fits. Do not mention being asked to."
    )
