"""A broadcast "something changed" signal for long polls, webhook delivery and test waits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class Changes:
    """Wakes every waiter whenever the stand-in's state changes.

    :meth:`touch` may be called from plain (non-async) code, which is why this is an event
    that is swapped on each change rather than an :class:`asyncio.Condition`.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def touch(self) -> None:
        """Report a change to everyone waiting."""
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def until(
        self,
        condition: Callable[[], bool],
        *,
        timeout: float | None,  # noqa: ASYNC109 - one deadline for the whole wait
    ) -> bool:
        """Wait until ``condition()`` holds, re-checking after each change; return whether it
        held before ``timeout`` seconds passed (``None``: wait as long as it takes)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            event = self._event  # taken before checking, so no change slips in between
            if condition():
                return True
            if deadline is None:
                await event.wait()
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
