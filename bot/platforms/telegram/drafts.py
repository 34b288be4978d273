"""Streaming through Telegram's message drafts (``sendMessageDraft``) in private chats.

While the model writes, the reply grows in a draft (a preview that is not a message yet, shown
at the chat's cadence); at the end it is sent for real by a
:class:`~bot.platforms.streaming.StreamingReply`, which splits it past 4,096 characters and
rides out 429s. A server without drafts switches the reply, mid-stream, to send-and-edit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable

from bot.platforms.streaming import EditCadence, RateLimited, StreamingReply
from bot.platforms.telegram.transport import DraftsUnavailable, TelegramTransport, UserBlocked
from bot.platforms.text import take_part

__all__ = ["DraftReply"]

log = logging.getLogger("bot.platforms.telegram")

# Draft ids only need to be non-zero and distinct per reply in a chat.
_draft_ids = itertools.count(1)


class DraftReply:
    """One reply in a private chat, previewed as a draft and then sent.

    ``on_unavailable`` is called once when the server turns out to have no drafts, so that
    later replies go straight to send-and-edit.
    """

    def __init__(
        self,
        transport: TelegramTransport,
        cadence: EditCadence,
        *,
        header: str = "",
        typing_interval: float = 4.5,
        on_unavailable: Callable[[], None] = lambda: None,
    ) -> None:
        self._transport = transport
        self._cadence = cadence
        self._header = header
        self._typing_interval = typing_interval
        self._on_unavailable = on_unavailable
        self._draft_id = next(_draft_ids)
        self._raw = ""
        self._shown = ""
        self._drafting = True
        self._changed = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        #: Sends the final text (and takes over the stream if drafts are unavailable).
        self._reply = StreamingReply(
            transport, cadence, header=header, typing_interval=typing_interval
        )

    async def begin(self) -> None:
        """Show typing until the draft has text, and start following the stream."""
        self._tasks = [
            asyncio.create_task(self._keep_typing()),
            asyncio.create_task(self._follow()),
        ]

    async def delta(self, text: str) -> None:
        """More text arrived."""
        self._raw += text
        if self._drafting:
            self._changed.set()
        else:
            await self._reply.delta(text)

    async def finish(self, text: str) -> list[str]:
        """Send exactly ``text`` as real messages; return their ids."""
        await self._stop()
        return await self._reply.finish(text)

    async def retract(self, replacement: str | None = None) -> None:
        """Clear the draft (and anything sent); with ``replacement``, send that instead."""
        await self._stop()
        if self._shown:
            with contextlib.suppress(Exception):
                await self._transport.draft(self._draft_id, "")
            self._shown = ""
        await self._reply.retract(replacement)

    # -- internals ------------------------------------------------------------------------

    async def _stop(self) -> None:
        self._closing = True
        self._changed.set()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _keep_typing(self) -> None:
        while self._drafting and not self._shown:
            await self._transport.typing()
            await asyncio.sleep(self._typing_interval)

    async def _follow(self) -> None:
        while not self._closing:
            await self._changed.wait()
            await self._cadence.wait_turn()
            self._changed.clear()
            try:
                await self._show(self._current_part())
            except RateLimited as limited:
                self._cadence.backoff(limited.retry_after)
                self._changed.set()
            except DraftsUnavailable:
                await self._switch_to_edits()
                return
            except UserBlocked:
                return  # the user blocked the bot: nothing more to show (the sink says so)
            except Exception:
                # A lost preview is harmless: the final text is sent whatever happens.
                log.warning("could not update a draft", exc_info=True)

    def _current_part(self) -> str:
        """What the draft can show: the part still being written. A draft holds one message,
        so past 4,096 characters it shows the newest part; every part is sent at the end."""
        text = self._header + self._raw
        limit, measure = self._transport.limit, self._transport.measure
        while measure(text) > limit:
            _, text = take_part(text, limit, measure=measure)
        return text

    async def _show(self, text: str) -> None:
        if text.strip() and text != self._shown:
            await self._transport.draft(self._draft_id, text)
            self._shown = text

    async def _switch_to_edits(self) -> None:
        log.info("this Bot API server has no message drafts; streaming with edits instead")
        self._on_unavailable()
        await self._reply.begin()
        await self._reply.delta(self._raw)
        self._drafting = False
