"""Telling a user that a reply was lost: a short notice, retried until the platform takes it.

When a reply could not be delivered, the platform is usually refusing everything for a
while (an outage, a rate limit, a wedged connection). The notice waits for it to take
messages again, with backoff, for a bounded time; at most one is owed per conversation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.conversation.sink import DeliveryFailed, ReplySink

log = logging.getLogger("bot.conversation")

UNDELIVERED_NOTICE = "My reply to your last message could not be delivered; please send it again."


@dataclass(frozen=True, slots=True)
class NoticeRetry:
    """How a notice about an undelivered reply is retried, in seconds."""

    #: Wait before the first attempt (the platform has just refused the reply).
    first_delay: float = 1.0
    #: Each wait doubles, up to this.
    max_delay: float = 60.0
    #: After this long the notice is given up: the user has moved on.
    give_up_after: float = 900.0


class OwedNotices:
    """The notices owed to conversations whose reply was not delivered.

    Each runs as a task of its own until the platform takes it, refuses the chat for good,
    or :attr:`NoticeRetry.give_up_after` passes; :meth:`aclose` cancels those still waiting.
    """

    def __init__(self, retry: NoticeRetry, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._retry = retry
        self._clock = clock
        #: One task per conversation id, kept only while it runs.
        self._tasks: dict[int, asyncio.Task[None]] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def owe(self, conversation_id: int, sink: ReplySink) -> None:
        """Tell the conversation through ``sink``, once the platform takes messages again
        (nothing more if a notice is already owed there)."""
        if conversation_id in self._tasks:
            return
        task = asyncio.create_task(self._tell(conversation_id, sink))
        self._tasks[conversation_id] = task
        task.add_done_callback(lambda done: self._forget(conversation_id, done))

    async def aclose(self) -> None:
        """Cancel every notice still waiting (at shutdown). Safe to call twice."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _tell(self, conversation_id: int, sink: ReplySink) -> None:
        retry = self._retry
        give_up_at = self._clock() + retry.give_up_after
        delay = retry.first_delay
        while True:
            await asyncio.sleep(max(0.0, min(delay, give_up_at - self._clock())))
            try:
                await sink.notice(UNDELIVERED_NOTICE)
            except DeliveryFailed as failure:
                if failure.permanent:
                    log.info("conversation %s refuses the bot now: %s", conversation_id, failure)
                    return
                if self._clock() >= give_up_at:
                    log.warning(
                        "gave up telling conversation %s that a reply was lost: %s",
                        conversation_id,
                        failure,
                    )
                    return
            else:
                log.info("told conversation %s that a reply was lost", conversation_id)
                return
            delay = min(2 * delay, retry.max_delay)

    def _forget(self, conversation_id: int, task: asyncio.Task[None]) -> None:
        if self._tasks.get(conversation_id) is task:
            del self._tasks[conversation_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("a lost-reply notice failed", exc_info=task.exception())
