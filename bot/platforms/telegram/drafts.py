"""Telegram's message drafts (``sendMessageDraft``) as the live preview of a reply.

In private chats the reply grows in a draft (a preview that is not a message yet) while the
model writes; the shared pump (:class:`~bot.platforms.streaming.StreamingReply`) then posts it
as real messages. A server without drafts makes the pump switch, mid-stream, to send-and-edit.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from bot.platforms.streaming import PreviewUnavailable
from bot.platforms.telegram.transport import DraftsUnavailable, TelegramTransport
from bot.platforms.text import take_part

__all__ = ["DraftPreview"]

# Draft ids only need to be non-zero and distinct per reply in a chat.
_draft_ids = itertools.count(1)


class DraftPreview:
    """One reply's draft in a private chat (a :class:`~bot.platforms.streaming.Preview`).

    ``on_unavailable`` is called when the server turns out to have no drafts, so that later
    replies go straight to send-and-edit.
    """

    def __init__(self, transport: TelegramTransport, *, on_unavailable: Callable[[], None]) -> None:
        self._transport = transport
        self._on_unavailable = on_unavailable
        self._draft_id = next(_draft_ids)

    async def show(self, text: str) -> None:
        """Show the part of ``text`` still being written: a draft holds one message, so past
        4,096 characters it shows the newest part (every part is sent at the end)."""
        limit, measure = self._transport.limit, self._transport.measure
        while measure(text) > limit:
            _, text = take_part(text, limit, measure=measure)
        try:
            await self._transport.draft(self._draft_id, text)
        except DraftsUnavailable as error:
            self._on_unavailable()
            raise PreviewUnavailable(str(error)) from error

    async def clear(self) -> None:
        """Empty the draft."""
        await self._transport.draft(self._draft_id, "")
