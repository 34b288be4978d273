"""Showing a reply while it streams: post early, edit at a pace the platform allows, continue
in new messages past the length limit, and end with exactly the final text.

Platform-neutral: an adapter supplies a :class:`MessageTransport` (how to send, edit and delete
one message, and show typing) and shares one :class:`EditCadence` per chat, so every reply in
that chat draws on the same allowance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, TypeVar

from bot.platforms.text import Measure, split_message, take_part

log = logging.getLogger("bot.platforms")

_T = TypeVar("_T")

#: Attempts at each step of the final text before giving up (each waits out any 429).
FINAL_ATTEMPTS = 6


class RateLimited(Exception):
    """Raised by a transport when the platform said "slow down" (HTTP 429)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited; retry after {retry_after:.2f} s")
        self.retry_after = retry_after


class MessageTransport(Protocol):
    """How one platform sends, edits and deletes a message in one chat."""

    #: Longest message the platform accepts, in units of :meth:`measure`.
    limit: int

    def measure(self, text: str) -> int:
        """The length of ``text`` as the platform counts it."""

    async def send(self, text: str) -> str:
        """Post a new message; return its platform id."""

    async def edit(self, message_id: str, text: str) -> None:
        """Replace the text of a message this transport posted."""

    async def delete(self, message_id: str) -> None:
        """Delete a message this transport posted."""

    async def typing(self) -> None:
        """Show the typing indicator once (it fades by itself after a few seconds)."""


class EditCadence:
    """The pace of sends and edits in one chat, shared by every reply in it.

    ``min_interval`` seconds separate two operations; :meth:`backoff` pushes the next one
    back after the platform answered 429.
    """

    def __init__(
        self,
        min_interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.min_interval = min_interval
        self._on_wait = on_wait
        self._clock = clock
        self._sleep = sleep
        self._next_at = -float("inf")
        self._lock = asyncio.Lock()
        #: Seconds spent waiting for a turn, in total (for metrics and benchmarks).
        self.waited = 0.0

    async def wait_turn(self) -> None:
        """Wait until the chat may take another operation, and claim it."""
        async with self._lock:
            delay = self._next_at - self._clock()
            if delay > 0:
                self.waited += delay
                if self._on_wait is not None:
                    self._on_wait(delay)
                await self._sleep(delay)
            self._next_at = self._clock() + self.min_interval

    def backoff(self, seconds: float) -> None:
        """Nothing more in this chat for ``seconds``."""
        self._next_at = max(self._next_at, self._clock() + seconds)


@dataclass
class CadenceBook:
    """One :class:`EditCadence` per chat, created on first use."""

    min_interval: float
    #: Told how long each wait was (e.g. the platform rate-limit metric).
    on_wait: Callable[[float], None] | None = None
    _cadences: dict[str, EditCadence] = field(default_factory=dict)

    def for_chat(self, chat_id: str) -> EditCadence:
        """The cadence every reply in ``chat_id`` shares."""
        cadence = self._cadences.get(chat_id)
        if cadence is None:
            cadence = EditCadence(self.min_interval, on_wait=self.on_wait)
            self._cadences[chat_id] = cadence
        return cadence


class StreamingReply:
    """One reply on its way to a chat: the platform half of a
    :class:`~bot.conversation.sink.ReplySink` turn.

    ``header`` goes in front of the first message (e.g. the character's name when several
    share one bot). ``typing_interval`` is how often the typing indicator is renewed until the
    first text is visible.
    """

    def __init__(
        self,
        transport: MessageTransport,
        cadence: EditCadence,
        *,
        header: str = "",
        typing_interval: float = 4.5,
    ) -> None:
        self._transport = transport
        self._cadence = cadence
        self._header = header
        self._typing_interval = typing_interval
        self._raw = ""
        #: Messages posted, with the text each shows now. All but the last are complete.
        self._posted: list[tuple[str, str]] = []
        #: The last posted message is complete too: the next text goes into a new one.
        self._last_sealed = False
        #: Text after the complete messages, reopened code fence included.
        self._pending = header
        self._changed = asyncio.Event()
        self._closing = False
        self._pump: asyncio.Task[None] | None = None
        self._typing: asyncio.Task[None] | None = None

    @property
    def message_ids(self) -> list[str]:
        """The ids of the messages posted so far, in order."""
        return [message_id for message_id, _ in self._posted]

    async def begin(self) -> None:
        """Show typing until the first text is up, and start following the stream."""
        self._typing = asyncio.create_task(self._keep_typing())
        self._pump = asyncio.create_task(self._follow())

    async def delta(self, text: str) -> None:
        """More text arrived."""
        self._raw += text
        self._pending += text
        self._changed.set()

    async def finish(self, text: str) -> list[str]:
        """Make the visible messages show exactly ``text``; return their ids."""
        await self._stop()
        parts = split_message(self._header + text, self._transport.limit, measure=self._measure)
        for index, part in enumerate(parts):
            if index < len(self._posted):
                message_id, shown = self._posted[index]
                if shown != part:
                    await self._final(partial(self._transport.edit, message_id, part))
                    self._posted[index] = (message_id, part)
            else:
                message_id = await self._final(partial(self._transport.send, part))
                self._posted.append((message_id, part))
        for message_id, _ in self._posted[len(parts) :]:
            await self._final(partial(self._transport.delete, message_id))
        del self._posted[len(parts) :]
        return self.message_ids

    async def retract(self, replacement: str | None = None) -> None:
        """Take down what was shown; with ``replacement``, post that instead."""
        await self._stop()
        for message_id in self.message_ids:
            await self._final(partial(self._transport.delete, message_id))
        self._posted.clear()
        if replacement:
            await self.finish(replacement)

    # -- internals ------------------------------------------------------------------------

    def _measure(self, text: str) -> int:
        return self._transport.measure(text)

    async def _stop(self) -> None:
        self._closing = True
        self._changed.set()
        if self._typing is not None:
            self._typing.cancel()
        # The pump is not cancelled: a send in flight must finish so its id is known.
        for task in (self._typing, self._pump):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._pump = self._typing = None

    async def _keep_typing(self) -> None:
        while not self._posted:
            try:
                await self._transport.typing()
            except Exception:
                # Typing is a courtesy: its failure must not fail the reply.
                log.debug("could not show typing", exc_info=True)
            await asyncio.sleep(self._typing_interval)

    async def _follow(self) -> None:
        """Bring the visible messages up to date, as often as the cadence allows."""
        while True:
            await self._changed.wait()
            if self._closing:
                return
            await self._cadence.wait_turn()
            if self._closing:
                return
            self._changed.clear()
            try:
                await self._show_pending()
            except RateLimited as limited:
                self._cadence.backoff(limited.retry_after)
                self._changed.set()  # try again once the pause is over
            except Exception:
                # A failed intermediate edit is not fatal: finish() puts the final text up.
                log.warning("could not update a streaming reply", exc_info=True)

    async def _show_pending(self) -> None:
        """One operation: post or edit the last message, sealing it when it is full."""
        limit = self._transport.limit
        if self._measure(self._pending) > limit:
            part, rest = take_part(self._pending, limit, measure=self._measure)
            await self._show_last(part)
            self._last_sealed = True
            self._pending = rest
            self._changed.set()
            return
        await self._show_last(self._pending)

    async def _show_last(self, text: str) -> None:
        if not text.strip():
            return
        if self._posted and not self._last_sealed:
            message_id, shown = self._posted[-1]
            if shown != text:
                await self._transport.edit(message_id, text)
                self._posted[-1] = (message_id, text)
            return
        self._posted.append((await self._transport.send(text), text))
        self._last_sealed = False

    async def _final(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        """Run one step of the final text: waits its turn and rides out 429s."""
        attempts = 0
        while True:
            await self._cadence.wait_turn()
            try:
                return await operation()
            except RateLimited as limited:
                attempts += 1
                if attempts == FINAL_ATTEMPTS:
                    raise
                self._cadence.backoff(limited.retry_after)


__all__ = [
    "CadenceBook",
    "EditCadence",
    "Measure",
    "MessageTransport",
    "RateLimited",
    "StreamingReply",
]
