"""No turn is lost: conversations owed a turn get it, after a crash, a restart or an outage.

When the trigger policy decides a stored message must be answered, storage notes that the
conversation is owed a turn; a finished turn (whatever its outcome) notes what it answered.
:class:`Recovery` looks for conversations still owed a turn that nobody is running (a
process killed mid-reply, a turn stopped by shutdown, a message stored while shutting down),
when a platform is connected and then every half lease, and hands each to the manager, which
runs the turn through the conversation's lane and claim like any other (so exactly once,
never beside a live turn). What is older than ``max_age`` is given up: an answer to something
said long ago would only confuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from bot.conversation.incoming import ConversationKey
from bot.conversation.sink import ReplySink
from bot.storage import OwedTurn, Storage, StorageError

__all__ = ["Recovery", "SinkFactory", "conversation_key"]

log = logging.getLogger("bot.conversation")

#: How a platform makes a sink for a conversation no incoming message asked for (a resumed
#: turn); ``None`` when the chat is gone.
SinkFactory = Callable[[ConversationKey], Awaitable[ReplySink | None]]

#: Runs an owed turn through ``sink``.
Resume = Callable[[OwedTurn, ReplySink], Coroutine[Any, Any, object]]

#: The shortest pause between two sweeps, however often they are asked for.
MIN_PAUSE = 1.0


def conversation_key(turn: OwedTurn) -> ConversationKey:
    """The key of the conversation owed ``turn``."""
    conversation = turn.conversation
    return ConversationKey(conversation.platform, conversation.chat_id, conversation.thread_id)


class Recovery:
    """Sweeps for owed turns on the platforms that registered a :data:`SinkFactory`."""

    def __init__(
        self,
        storage: Storage,
        resume: Resume,
        *,
        max_age: timedelta,
        interval: float,
        now: Callable[[], datetime],
    ) -> None:
        self._storage = storage
        self._resume = resume
        self._max_age = max_age
        self._interval = interval
        self._now = now
        self._factories: dict[str, SinkFactory] = {}
        self._wake = asyncio.Event()
        self._sweeping: asyncio.Task[None] | None = None
        #: Resumed turns running, by conversation id (a sweep does not start one twice).
        self._running: dict[int, asyncio.Task[object]] = {}

    def register(self, platform: str, make_sink: SinkFactory) -> None:
        """Resume ``platform``'s owed turns through ``make_sink``, starting now."""
        self._factories[platform] = make_sink
        if self._sweeping is None or self._sweeping.done():
            self._sweeping = asyncio.create_task(self._sweep_now_and_then())
        self.wake()

    def wake(self) -> None:
        """Sweep soon (a claim was released late: the database is back)."""
        self._wake.set()

    def stop(self) -> None:
        """Start no more resumed turns (shutdown); those running are the manager's."""
        self._factories.clear()
        if self._sweeping is not None:
            self._sweeping.cancel()

    async def close(self) -> None:
        """:meth:`stop`, and wait until the sweep is over."""
        self.stop()
        if self._sweeping is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeping
            self._sweeping = None

    async def sweep(self, platform: str) -> int:
        """Start the owed turns of ``platform``; how many were started."""
        make_sink = self._factories[platform]
        oldest = self._now() - self._max_age
        started = 0
        for turn in await self._storage.owed_turns(platform):
            conversation = turn.conversation
            if conversation.id in self._running:
                continue
            key = conversation_key(turn)
            if turn.message is None or turn.message.created_at < oldest:
                await self._give_up(turn, key, "too old" if turn.message else "deleted")
                continue
            try:
                sink = await make_sink(key)
            except Exception:
                log.exception("could not reach %s to resume its turn", key)
                continue  # the next sweep tries again
            if sink is None:
                await self._give_up(turn, key, "the chat is gone")
                continue
            log.info("resuming the turn owed in %s (message %s)", key, turn.message.id)
            task: asyncio.Task[object] = asyncio.create_task(self._resume(turn, sink))
            self._running[conversation.id] = task
            task.add_done_callback(partial(self._ended, conversation.id))
            started += 1
        return started

    def _ended(self, conversation_id: int, _: object) -> None:
        self._running.pop(conversation_id, None)

    async def _give_up(self, turn: OwedTurn, key: ConversationKey, why: str) -> None:
        log.warning("not answering %s: the message owed a turn is %s", key, why)
        await self._storage.mark_answered(turn.conversation.id, turn.wanted_through)

    async def _sweep_now_and_then(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()
            for platform in list(self._factories):
                try:
                    await self.sweep(platform)
                except StorageError as error:
                    log.warning("could not look for owed turns on %s: %s", platform, error)
                except Exception:
                    log.exception("looking for owed turns on %s failed", platform)
            await asyncio.sleep(MIN_PAUSE)
