"""Showing a reply while it streams, and delivering its final text: one pump for every platform.

An adapter supplies a :class:`MessageTransport` (how to send, edit and delete one message and
show typing in one chat), the :class:`WriteBudget` that everything posted in that chat shares,
and optionally a :class:`Preview` (e.g. Telegram's drafts) that shows the reply while it is
written instead of posting it early.

Pacing is a budget, not a metronome. Each chat's writes are booked against the platform's real
limits (at most N writes in any W seconds, :class:`Rate`). Previews (the early post and the
edits while the model writes) keep a gap between them and leave a reserve in the budget; the
final text may use all of it, so it goes out the moment the reply ends unless the chat really
is at its limit. A write is booked only when it is about to be made, so no slot is ever held
back unused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Generic, Protocol, TypeVar

from bot.conversation.sink import DeliveryFailed
from bot.platforms.text import Measure, split_message, take_part

log = logging.getLogger("bot.platforms")

_T = TypeVar("_T")
_K = TypeVar("_K", bound=Hashable)
_M = TypeVar("_M")
_M_contra = TypeVar("_M_contra", contravariant=True)

#: Attempts at each step of the final text before giving up (each waits out any 429).
FINAL_ATTEMPTS = 6
#: Seconds the first preview waits for more text: a reply that arrives all at once is then
#: posted in its final parts, without partial posts that cost writes.
FIRST_PREVIEW_DELAY = 0.02


class WriteRateLimited(Exception):
    """Raised by a transport when the platform said "slow down" (HTTP 429)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited; retry after {retry_after:.2f} s")
        self.retry_after = retry_after


class PreviewUnavailable(Exception):
    """Raised by a :class:`Preview` that the platform turned out not to support."""


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


class FinalControls(Protocol):
    """Buttons that go under a reply's last message in the write that shows its final text,
    so that they cost no write of their own (an adapter binds them to its transport)."""

    async def send(self, text: str) -> str:
        """Post ``text`` as a new message with the buttons under it; return its id."""

    async def edit(self, message_id: str, text: str) -> None:
        """Show ``text`` in a message, with the buttons under it."""

    async def attach(self, message_id: str) -> None:
        """Put the buttons under a message that already shows its final text."""


class ControlsTransport(MessageTransport, Protocol[_M_contra]):
    """A transport whose writes can carry a platform's buttons (of markup type ``_M_contra``)."""

    async def send_with(self, text: str, markup: _M_contra) -> str:
        """Post ``text`` with ``markup`` under it; return its platform id."""

    async def edit_with(self, message_id: str, text: str, markup: _M_contra) -> None:
        """Show ``text`` in a message, with ``markup`` under it."""

    async def set_markup(self, message_id: str, markup: _M_contra) -> None:
        """Put ``markup`` under a message, its text unchanged."""


@dataclass(frozen=True, slots=True)
class Buttons(Generic[_M]):
    """The :class:`FinalControls` that ``markup`` makes on ``transport``."""

    transport: ControlsTransport[_M]
    markup: _M

    async def send(self, text: str) -> str:
        """Post ``text`` with the buttons."""
        return await self.transport.send_with(text, self.markup)

    async def edit(self, message_id: str, text: str) -> None:
        """Show ``text`` with the buttons."""
        await self.transport.edit_with(message_id, text, self.markup)

    async def attach(self, message_id: str) -> None:
        """Add the buttons to a message already final."""
        await self.transport.set_markup(message_id, self.markup)


class Preview(Protocol):
    """Somewhere other than real messages to show a reply while it is written."""

    async def show(self, text: str) -> None:
        """Show ``text``, the reply so far (header included). May raise
        :class:`PreviewUnavailable`; the reply then streams with messages instead."""

    async def clear(self) -> None:
        """Take the preview down (the reply was withdrawn)."""


@dataclass(frozen=True, slots=True)
class Rate:
    """A platform limit: at most ``count`` writes in any ``seconds``."""

    count: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Pace:
    """How one chat may be written to: the platform's limits, and for previews a gap between
    two of one reply's and a reserve of writes left for final texts."""

    rates: tuple[Rate, ...]
    preview_gap: float
    reserve: int = 1

    def __post_init__(self) -> None:
        if any(rate.count <= self.reserve for rate in self.rates):
            raise ValueError("every rate must allow more writes than the reserve")


class WriteBudget:
    """The writes one chat may still make, shared by every reply posted there."""

    def __init__(
        self,
        pace: Pace,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.pace = pace
        #: The clock the budget's windows are measured on.
        self.clock = clock
        self._on_wait = on_wait
        self._longest = max((rate.seconds for rate in pace.rates), default=0.0)
        #: When the writes inside the longest window were booked, oldest first.
        self._booked: deque[float] = deque()
        self._paused_until = -float("inf")
        #: Seconds spent waiting for room, in total (for metrics and benchmarks).
        self.waited = 0.0

    def delay(self, *, preview: bool = False, not_before: float = -float("inf")) -> float:
        """Seconds until a write may be booked (a preview leaves the reserve free)."""
        now = self.clock()
        booked = self._booked
        while booked and booked[0] <= now - self._longest:
            booked.popleft()
        ready = max(self._paused_until, not_before)
        reserve = self.pace.reserve if preview else 0
        for rate in self.pace.rates:
            allowed = rate.count - reserve
            recent = [t for t in booked if t > now - rate.seconds]
            if len(recent) >= allowed:
                # Room comes back when enough of the recent writes have left the window.
                ready = max(ready, recent[len(recent) - allowed] + rate.seconds)
        return max(0.0, ready - now)

    async def take(
        self,
        *,
        preview: bool = False,
        not_before: float = -float("inf"),
        unless: asyncio.Event | None = None,
    ) -> bool:
        """Wait for room and book one write. Returns ``False``, booking nothing, if
        ``unless`` is set first."""
        waited = 0.0
        while (delay := self.delay(preview=preview, not_before=not_before)) > 0:
            waited += delay
            if await _sleep_unless(unless, delay):
                break
        if waited:
            self.waited += waited
            if self._on_wait is not None:
                self._on_wait(waited)
        if unless is not None and unless.is_set():
            return False
        self._booked.append(self.clock())
        return True

    def backoff(self, seconds: float) -> None:
        """The platform said to wait: nothing more in this chat for ``seconds``."""
        self._paused_until = max(self._paused_until, self.clock() + seconds)

    @property
    def idle(self) -> bool:
        """Nothing booked that still counts and no pause: forgetting it changes nothing."""
        now = self.clock()
        return self._paused_until <= now and all(t <= now - self._longest for t in self._booked)


class BudgetBook(Generic[_K]):
    """One :class:`WriteBudget` per chat, kept while it still limits anything."""

    def __init__(
        self,
        pace: Pace,
        *,
        on_wait: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pace = pace
        #: Told how long each wait was (e.g. the platform rate-limit metric).
        self.on_wait = on_wait
        self._clock = clock
        self._budgets: dict[_K, WriteBudget] = {}
        self._swept_at = 64

    def __len__(self) -> int:
        return len(self._budgets)

    def for_chat(self, chat: _K) -> WriteBudget:
        """The budget every write in ``chat`` draws on."""
        budget = self._budgets.get(chat)
        if budget is None:
            if len(self._budgets) >= self._swept_at:
                self._sweep()
            budget = WriteBudget(self.pace, on_wait=self.on_wait, clock=self._clock)
            self._budgets[chat] = budget
        return budget

    def _sweep(self) -> None:
        # A budget with nothing inside its windows is the same as a new one.
        for chat in [chat for chat, budget in self._budgets.items() if budget.idle]:
            del self._budgets[chat]
        self._swept_at = max(64, 2 * len(self._budgets))


class StreamingReply:
    """One reply on its way to a chat: the platform half of a
    :class:`~bot.conversation.sink.ReplySink` turn.

    ``header`` goes in front of the first message (e.g. the character's name when several
    share one bot). ``typing_interval`` is how often the typing indicator is renewed until
    something is visible. With a ``preview``, the reply grows there while it streams, drawing
    on ``preview_budget`` if given (e.g. drafts, which are not messages), and is posted as
    messages only when it is complete.
    """

    def __init__(
        self,
        transport: MessageTransport,
        budget: WriteBudget,
        *,
        header: str = "",
        typing_interval: float = 4.5,
        preview: Preview | None = None,
        preview_budget: WriteBudget | None = None,
    ) -> None:
        self._transport = transport
        self._budget = budget
        self._preview_budget = preview_budget
        self._header = header
        self._typing_interval = typing_interval
        self._preview = preview
        self._preview_shown = ""
        self._raw = ""
        #: Messages posted, with the text each shows now. All but the last are complete.
        self._posted: list[tuple[str, str]] = []
        #: The last posted message is complete too: the next text goes into a new one.
        self._last_sealed = False
        #: Text after the complete messages, reopened code fence included.
        self._pending = header
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._last_preview = -float("inf")
        self._tasks: list[asyncio.Task[None]] = []
        #: Messages of an earlier reply this one rewrites, not written to yet (reused before
        #: posting anew, deleted by :meth:`finish` when not needed).
        self._spare: list[str] = []
        #: What the messages this reply rewrites showed before (see :meth:`take_over`).
        self._original: list[tuple[str, str]] = []

    @property
    def message_ids(self) -> list[str]:
        """The ids of the messages posted so far, in order."""
        return [message_id for message_id, _ in self._posted]

    def take_over(self, message_ids: Sequence[str], shown: str, *, keep: bool) -> None:
        """Write this reply into messages already posted (``message_ids``, which show the
        header and ``shown``), before :meth:`begin`: with ``keep`` it continues ``shown``,
        otherwise it replaces it from the first message on. :meth:`finish` edits them,
        posting or deleting messages as the new length needs; :meth:`retract` puts back
        what they showed."""
        parts = split_message(self._header + shown, self._transport.limit, measure=self._measure)
        parts += [""] * (len(message_ids) - len(parts))
        self._original = list(zip(message_ids, parts, strict=False))
        if not self._original:
            return
        if keep:
            self._posted = list(self._original)
            self._raw = shown
            self._pending = self._original[-1][1]
        else:
            self._posted = self._original[:1]
            self._spare = [message_id for message_id, _ in self._original[1:]]

    async def begin(self) -> None:
        """Show typing until the first text is up, and start following the stream."""
        self._tasks = [
            asyncio.create_task(self._keep_typing()),
            asyncio.create_task(self._follow()),
        ]

    async def delta(self, text: str) -> None:
        """More text arrived."""
        self._raw += text
        self._pending += text
        self._changed.set()

    async def finish(self, text: str, controls: FinalControls | None = None) -> list[str]:
        """Make the visible messages show exactly ``text``; return their ids. ``controls``
        ride on the write that puts the last part up; if that part already shows its final
        text, they are added to it alone (one write, as cheap as any edit)."""
        await self._stop()
        parts = split_message(self._header + text, self._transport.limit, measure=self._measure)
        last = len(parts) - 1
        for index, part in enumerate(parts):
            with_controls = controls if index == last else None
            if index < len(self._posted):
                message_id, shown = self._posted[index]
                if shown != part:
                    edit = self._transport.edit if with_controls is None else with_controls.edit
                    await self._final(partial(edit, message_id, part))
                    self._posted[index] = (message_id, part)
                elif with_controls is not None:
                    await self._final(partial(with_controls.attach, message_id))
            else:
                message_id = await self._final(partial(self._post, part, with_controls))
                self._posted.append((message_id, part))
        unneeded = [message_id for message_id, _ in self._posted[len(parts) :]] + self._spare
        for message_id in unneeded:
            await self._final(partial(self._transport.delete, message_id))
        del self._posted[len(parts) :]
        self._spare.clear()
        return self.message_ids

    async def _post(self, text: str, controls: FinalControls | None = None) -> str:
        """Post ``text`` as a new message, or in a spare one of the reply this rewrites
        (with ``controls`` under it, if given)."""
        writer: MessageTransport | FinalControls = self._transport if controls is None else controls
        if self._spare:
            message_id = self._spare[0]
            await writer.edit(message_id, text)
            self._spare.pop(0)
            return message_id
        return await writer.send(text)

    async def retract(self, replacement: str | None = None) -> None:
        """Take down what was shown; with ``replacement``, post that instead."""
        await self._stop()
        if self._preview is not None and self._preview_shown:
            try:
                await self._preview.clear()
            except Exception:
                log.warning("could not clear a reply's preview", exc_info=True)
            self._preview_shown = ""
        if self._original:
            await self._restore()
            return
        for message_id in self.message_ids:
            await self._final(partial(self._transport.delete, message_id))
        self._posted.clear()
        if replacement:
            await self.finish(replacement)

    async def _restore(self) -> None:
        """Put back what the messages this reply rewrote showed (a rewrite that failed
        leaves the old reply as it was); messages it added are deleted."""
        showing = dict(self._posted)
        for message_id, text in self._original:
            if message_id in showing and showing[message_id] != text:
                await self._final(partial(self._transport.edit, message_id, text))
        kept = {message_id for message_id, _ in self._original}
        for message_id in showing.keys() - kept:
            await self._final(partial(self._transport.delete, message_id))
        self._posted = list(self._original)
        self._spare.clear()

    # -- internals ------------------------------------------------------------------------

    def _measure(self, text: str) -> int:
        return self._transport.measure(text)

    async def _stop(self) -> None:
        """End the pump and the typing indicator. Neither is cancelled: a write in flight
        finishes, so its id is known, and an HTTP request cut off mid-way can cost its client
        the connection. Both stop at once when they are only waiting."""
        self._closing.set()
        self._changed.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            await task

    async def _keep_typing(self) -> None:
        while not (self._posted or self._preview_shown):
            try:
                await self._transport.typing()
            except Exception:
                # Typing is a courtesy: its failure must not fail the reply.
                log.debug("could not show typing", exc_info=True)
            if await _sleep_unless(self._closing, self._typing_interval):
                return

    async def _follow(self) -> None:
        """Bring the preview up to date as often as the budget allows, until the reply ends."""
        await self._changed.wait()
        if await _sleep_unless(self._closing, FIRST_PREVIEW_DELAY):
            return
        while True:
            await self._changed.wait()
            if self._closing.is_set():
                return
            budget = self._budget
            if self._preview is not None and self._preview_budget is not None:
                budget = self._preview_budget
            booked = await budget.take(
                preview=True,
                not_before=self._last_preview + budget.pace.preview_gap,
                unless=self._closing,
            )
            if not booked:
                return
            self._changed.clear()
            self._last_preview = budget.clock()
            try:
                await self._show_preview()
            except WriteRateLimited as limited:
                budget.backoff(limited.retry_after)
                self._changed.set()  # try again once the pause is over
            except PreviewUnavailable:
                log.info("the preview is unavailable here; streaming with messages instead")
                self._preview = None
                self._changed.set()
            except DeliveryFailed as failed:
                if failed.permanent:
                    return  # the chat refuses the bot; finish() reports it
                log.warning("could not update a streaming reply: %s", failed)
            except Exception:
                # A failed preview is not fatal: finish() puts the final text up.
                log.warning("could not update a streaming reply", exc_info=True)

    async def _show_preview(self) -> None:
        if self._preview is None:
            await self._show_pending()
            return
        text = self._header + self._raw
        if text.strip() and text != self._preview_shown:
            await self._preview.show(text)
            self._preview_shown = text

    async def _show_pending(self) -> None:
        """One write: post or edit the last message, sealing it when it is full."""
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
        self._posted.append((await self._post(text), text))
        self._last_sealed = False

    async def _final(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        """Run one write of the final text as soon as the budget has room; rides out 429s."""
        attempts = 0
        while True:
            await self._budget.take()
            try:
                return await operation()
            except WriteRateLimited as limited:
                attempts += 1
                if attempts == FINAL_ATTEMPTS:
                    raise
                self._budget.backoff(limited.retry_after)


async def _sleep_unless(event: asyncio.Event | None, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``event`` is set; whether it was set."""
    if event is None:
        await asyncio.sleep(seconds)
        return False
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()


__all__ = [
    "BudgetBook",
    "Buttons",
    "ControlsTransport",
    "FinalControls",
    "Measure",
    "MessageTransport",
    "Pace",
    "Preview",
    "PreviewUnavailable",
    "Rate",
    "StreamingReply",
    "WriteBudget",
    "WriteRateLimited",
]
