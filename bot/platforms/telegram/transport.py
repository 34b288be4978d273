"""Sending, editing and deleting one chat's messages through python-telegram-bot.

:class:`TelegramTransport` is the :class:`~bot.platforms.streaming.MessageTransport` of one
Telegram chat (or forum topic). It turns Telegram's answers into what the shared streaming
code understands: a 429 becomes :class:`~bot.platforms.streaming.WriteRateLimited`, "message is not
modified" is success, and refused formatting is sent again as plain text.
"""

from __future__ import annotations

import contextlib
import datetime as dtm
import logging
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from telegram import Bot, InlineKeyboardMarkup, ReplyParameters
from telegram.constants import ChatAction, MessageLimit, ParseMode
from telegram.error import BadRequest, EndPointNotFound, Forbidden, InvalidToken, RetryAfter
from telegram.warnings import PTBDeprecationWarning

from bot.conversation.sink import DeliveryFailed
from bot.platforms.streaming import WriteRateLimited
from bot.platforms.telegram.formatting import to_html

#: The platform name in conversation keys and storage.
PLATFORM = "telegram"

__all__ = ["ChatTarget", "DraftsUnavailable", "TelegramTransport", "UserBlocked", "retry_after"]

log = logging.getLogger("bot.platforms.telegram")

_T = TypeVar("_T")


class UserBlocked(DeliveryFailed):
    """The chat refuses the bot: the user blocked it, or it was removed from the group."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class DraftsUnavailable(Exception):
    """The Bot API server does not know ``sendMessageDraft`` (an older or self-hosted one)."""


@dataclass(frozen=True, slots=True)
class ChatTarget:
    """Where a reply goes: a chat, a forum topic in it, and the message it answers."""

    chat_id: int
    thread_id: int | None = None
    #: The first message of the reply quotes this one (groups), if set.
    reply_to: int | None = None


class TelegramTransport:
    """Messages in one chat; ``markdown=False`` sends text exactly as given."""

    limit: int = MessageLimit.MAX_TEXT_LENGTH.value

    def __init__(self, bot: Bot, target: ChatTarget, *, markdown: bool = True) -> None:
        self._bot = bot
        self._target = target
        self._markdown = markdown
        self._quoted = False
        #: Set once Telegram said the bot may not post here; nothing more is attempted.
        self.blocked = False

    def measure(self, text: str) -> int:
        """Telegram counts the 4,096 limit in code points, after the markup is parsed.

        Measuring the Markdown source is safe: its visible text is never longer.
        """
        return len(text)

    async def send(self, text: str) -> str:
        """Post ``text`` as a new message; the first one quotes the message being answered."""
        return await self.send_with(text, None)

    async def send_with(self, text: str, markup: InlineKeyboardMarkup | None) -> str:
        """Post ``text`` with ``markup`` (a keyboard) under it, quoting like :meth:`send`."""
        reply = None
        if self._target.reply_to is not None and not self._quoted:
            reply = ReplyParameters(self._target.reply_to, allow_sending_without_reply=True)

        async def send(body: str, parse_mode: str | None) -> str:
            sent = await self._bot.send_message(
                self._target.chat_id,
                body,
                parse_mode=parse_mode,
                message_thread_id=self._target.thread_id,
                reply_parameters=reply,
                reply_markup=markup,
            )
            return str(sent.message_id)

        with self._errors():
            message_id = await self._formatted(text, send)
        self._quoted = True
        return message_id

    async def edit(self, message_id: str, text: str) -> None:
        """Show ``text`` in a message this bot posted; an identical text is fine. Telegram
        takes a keyboard away when an edit does not repeat it."""
        await self.edit_with(message_id, text, None)

    async def edit_with(
        self, message_id: str, text: str, markup: InlineKeyboardMarkup | None
    ) -> None:
        """Show ``text`` in a message this bot posted, with ``markup`` under it."""

        async def edit(body: str, parse_mode: str | None) -> None:
            await self._bot.edit_message_text(
                body,
                self._target.chat_id,
                int(message_id),
                parse_mode=parse_mode,
                reply_markup=markup,
            )

        with self._errors():
            try:
                await self._formatted(text, edit)
            except BadRequest as error:
                if "message is not modified" not in error.message.lower():
                    raise

    async def set_markup(self, message_id: str, markup: InlineKeyboardMarkup | None) -> None:
        """Put ``markup`` under a message this bot posted (``None`` takes it away); the
        same keyboard again is fine."""
        with self._errors():
            try:
                await self._bot.edit_message_reply_markup(
                    self._target.chat_id, int(message_id), reply_markup=markup
                )
            except BadRequest as error:
                if "message is not modified" not in error.message.lower():
                    raise

    async def delete(self, message_id: str) -> None:
        """Delete a message this bot posted; one already gone is fine."""
        with self._errors():
            try:
                await self._bot.delete_message(self._target.chat_id, int(message_id))
            except BadRequest as error:
                if "message to delete not found" not in error.message.lower():
                    raise

    async def typing(self) -> None:
        """Show "typing…" (it lasts about 5 s). Cosmetic: a failure is only logged."""
        if self.blocked:
            return
        try:
            with self._errors():
                await self._bot.send_chat_action(
                    self._target.chat_id,
                    ChatAction.TYPING,
                    message_thread_id=self._target.thread_id,
                )
        except (UserBlocked, WriteRateLimited):
            pass
        except Exception as error:
            log.debug("typing action failed in %s: %s", self._target.chat_id, error)

    async def draft(self, draft_id: int, text: str) -> None:
        """Show ``text`` as the reply being written (private chats, Bot API 9.3+).

        Raises :class:`DraftsUnavailable` when the server has no ``sendMessageDraft``.
        """

        async def draft(body: str, parse_mode: str | None) -> None:
            await self._bot.send_message_draft(
                self._target.chat_id,
                draft_id,
                body,
                message_thread_id=self._target.thread_id,
                parse_mode=parse_mode,
            )

        with self._errors():
            try:
                await self._formatted(text, draft) if text else await draft("", None)
            except (EndPointNotFound, InvalidToken) as error:
                # An unknown method is a 404, which PTB reports like a bad token.
                if "not found" not in error.message.lower():
                    raise
                raise DraftsUnavailable(error.message) from error

    async def _formatted(self, text: str, call: Callable[[str, str | None], Awaitable[_T]]) -> _T:
        """``call`` with the Markdown as HTML, or with the plain text if Telegram refuses it."""
        if self._markdown:
            try:
                return await call(to_html(text), ParseMode.HTML)
            except BadRequest as error:
                reason = error.message.lower()
                if "can't parse entities" not in reason and "text is empty" not in reason:
                    raise
                log.warning("Telegram refused the formatting (%s); sending plain text", reason)
        return await call(text, None)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        if self.blocked:
            raise UserBlocked(f"the bot may not post in chat {self._target.chat_id}")
        try:
            yield
        except RetryAfter as error:
            raise WriteRateLimited(retry_after(error)) from error
        except Forbidden as error:
            self.blocked = True
            raise UserBlocked(error.message) from error


def retry_after(error: RetryAfter) -> float:
    """Seconds Telegram asked to wait (PTB 22 offers an int or a timedelta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)
