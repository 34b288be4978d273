"""The engine's :class:`~bot.conversation.sink.ReplySink` on Telegram.

A reply streams through a draft in private chats (where the server has drafts) and through
send-and-edit elsewhere, drawing on a write budget shared by everything the bot posts in that
chat: about one message a second in any chat, and at most 20 a minute in a group (Telegram's
limits). All characters post through the one bot, so each reply is headed with the
character's name when more than one character is in the chat.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from functools import partial

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import TelegramError

from bot.characters.schema import Character
from bot.conversation import commands
from bot.conversation.incoming import ConversationKey
from bot.conversation.manager import ConversationManager
from bot.conversation.sink import DeliveryFailed, SwipeControls
from bot.conversation.swipes import SwipeAction
from bot.platforms.streaming import (
    BudgetBook,
    Buttons,
    Pace,
    Rate,
    StreamingReply,
    WriteBudget,
    WriteRateLimited,
)
from bot.platforms.telegram.drafts import DraftPreview
from bot.platforms.telegram.formatting import escape_markdown
from bot.platforms.telegram.transport import (
    PLATFORM,
    ChatTarget,
    TelegramTransport,
    UserBlocked,
)

__all__ = ["CHAT_RATE", "DRAFT_RATE", "GROUP_RATE", "TelegramReplies", "TelegramSink"]

log = logging.getLogger("bot.platforms.telegram")

#: About one message a second in a private chat; short bursts are tolerated.
CHAT_RATE = Rate(3, 3.0)
#: At most 20 messages a minute in a group, in bursts of up to three.
GROUP_RATE = Rate(3, 9.0)
#: Drafts are previews, not messages: their own allowance, about one a second.
DRAFT_RATE = Rate(3, 3.0)


class TelegramReplies:
    """Makes the sinks of one bot: shares each chat's write budget, remembers whether drafts
    work. ``private_interval`` / ``group_interval`` are the least seconds between two updates
    of one reply while it streams."""

    def __init__(
        self,
        bot: Bot,
        manager: ConversationManager,
        *,
        private_interval: float = 1.0,
        group_interval: float = 3.0,
        group_rate: Rate = GROUP_RATE,
        typing_interval: float = 4.5,
        drafts: bool = True,
    ) -> None:
        self.bot = bot
        self.manager = manager
        self.typing_interval = typing_interval
        #: Stream through ``sendMessageDraft`` in private chats (turned off when the server
        #: turns out not to have it).
        self.drafts = drafts
        waited = partial(manager.metrics.platform_wait, PLATFORM)
        self._private: BudgetBook[int] = BudgetBook(
            Pace((CHAT_RATE,), preview_gap=private_interval), on_wait=waited
        )
        self._group: BudgetBook[int] = BudgetBook(
            Pace((group_rate,), preview_gap=group_interval), on_wait=waited
        )
        self._drafts: BudgetBook[int] = BudgetBook(
            Pace((DRAFT_RATE,), preview_gap=private_interval), on_wait=waited
        )

    def budget(self, target: ChatTarget, *, private: bool) -> WriteBudget:
        """The writes left in the target's chat (all its topics share them)."""
        book = self._private if private else self._group
        return book.for_chat(target.chat_id)

    def sink(self, key: ConversationKey, target: ChatTarget, *, private: bool) -> TelegramSink:
        """A sink for one message's turn in the conversation ``key``."""
        return TelegramSink(self, key, target, private=private)

    async def notice(self, target: ChatTarget, text: str, *, private: bool) -> list[str]:
        """Post ``text`` as plain text, paced with the chat; quietly nothing if blocked."""
        try:
            return await self.post_notice(target, text, private=private)
        except UserBlocked as blocked:
            log.info("not posting in chat %s: %s", target.chat_id, blocked)
            return []

    async def post_notice(self, target: ChatTarget, text: str, *, private: bool) -> list[str]:
        """Post ``text`` as plain text, paced with the chat; Telegram's refusals propagate
        (:class:`UserBlocked` when the chat refuses the bot)."""
        transport = TelegramTransport(self.bot, target, markdown=False)
        return await StreamingReply(transport, self.budget(target, private=private)).finish(text)

    def draft_budget(self, target: ChatTarget) -> WriteBudget:
        """The drafts left in the target's private chat."""
        return self._drafts.for_chat(target.chat_id)

    def disable_drafts(self) -> None:
        """The server has no drafts: stream with send-and-edit from now on."""
        self.drafts = False


class TelegramSink:
    """Delivers one turn's reply (and notices) to one Telegram chat or topic."""

    def __init__(
        self, replies: TelegramReplies, key: ConversationKey, target: ChatTarget, *, private: bool
    ) -> None:
        self._replies = replies
        self._key = key
        self._target = target
        self._private = private
        self._transport = TelegramTransport(replies.bot, target)
        self._reply: StreamingReply | None = None
        #: The keyboard the next :meth:`finish` puts under the reply (see :meth:`offer_controls`).
        self._controls: InlineKeyboardMarkup | None = None

    async def begin(self, character: Character) -> None:
        """Start the reply: typing first, then the text as it streams."""
        preview = None
        if self._private and self._replies.drafts:
            preview = DraftPreview(self._transport, on_unavailable=self._replies.disable_drafts)
        await self._start(character, preview)

    async def begin_over(
        self, character: Character, message_ids: Sequence[str], shown: str, *, keep: bool
    ) -> None:
        """Rewrite the reply shown as ``message_ids`` by editing it as the text streams (no
        draft: the reply is already there); ``keep`` continues ``shown``."""
        await self._start(character, None, (message_ids, shown, keep))

    async def offer_controls(self, controls: SwipeControls) -> None:
        """Show the swipe keyboard under the reply :meth:`finish` shows next: it rides on the
        send or edit that puts its last part up, so it costs no write of its own."""
        self._controls = swipe_keyboard(controls)

    async def _start(
        self,
        character: Character,
        preview: DraftPreview | None,
        over: tuple[Sequence[str], str, bool] | None = None,
    ) -> None:
        scene = await self._replies.manager.scene(self._key)
        header = f"**{escape_markdown(character.name)}**\n" if len(scene) > 1 else ""
        self._reply = StreamingReply(
            self._transport,
            self._replies.budget(self._target, private=self._private),
            header=header,
            typing_interval=self._replies.typing_interval,
            preview=preview,
            preview_budget=self._replies.draft_budget(self._target),
        )
        if over is not None:
            message_ids, shown, keep = over
            self._reply.take_over(message_ids, shown, keep=keep)
        await self._reply.begin()

    async def delta(self, text: str) -> None:
        """The next piece of the reply."""
        if self._reply is not None and not self._transport.blocked:
            await self._reply.delta(text)

    async def finish(self, text: str) -> Sequence[str]:
        """Show exactly ``text``; the ids of the messages it fills. Raises
        :class:`DeliveryFailed` when Telegram did not take it (permanent when blocked)."""
        if self._reply is None:
            raise RuntimeError("finish() before begin()")
        controls, self._controls = self._controls, None
        buttons = None if controls is None else Buttons(self._transport, controls)
        with self._delivery("reply"):
            return await self._reply.finish(text, buttons)

    async def retract(self, replacement: str | None = None) -> None:
        """Take the reply down; with ``replacement``, the character says that instead."""
        if self._reply is None:
            return
        try:
            await self._reply.retract(replacement)
        except UserBlocked as blocked:
            log.info("reply in chat %s not retracted: %s", self._target.chat_id, blocked)

    async def notice(self, text: str) -> None:
        """A short plain notice (an error, a cool-down); :class:`DeliveryFailed` when
        Telegram did not take it."""
        with self._delivery("notice"):
            await self._replies.post_notice(self._target, text, private=self._private)

    @contextlib.contextmanager
    def _delivery(self, what: str) -> Iterator[None]:
        """Telegram's refusals, after the streaming code's retries, as :class:`DeliveryFailed`."""
        chat = self._target.chat_id
        try:
            yield
        except UserBlocked as blocked:
            log.info("%s in chat %s not delivered: %s", what, chat, blocked)
            raise DeliveryFailed(
                f"chat {chat} refuses the bot: {blocked}", permanent=True
            ) from None
        except (TelegramError, WriteRateLimited) as error:
            raise DeliveryFailed(
                f"Telegram did not take the {what} in chat {chat}: {error}"
            ) from None


def swipe_keyboard(controls: SwipeControls) -> InlineKeyboardMarkup | None:
    """The inline keyboard under a reply: ◀ 2/3 ▶ when it has alternatives, regenerate and
    continue when the model wrote it; ``None`` when there is nothing to offer."""
    rows: list[list[InlineKeyboardButton]] = []

    def button(action: SwipeAction, label: str | None = None) -> InlineKeyboardButton:
        data = commands.swipe_data(action, controls.message_id)
        return InlineKeyboardButton(label or commands.LABELS[action], callback_data=data)

    if controls.count > 1:
        where = InlineKeyboardButton(controls.label, callback_data=SHOWN_DATA)
        rows.append([button(SwipeAction.PREVIOUS), where, button(SwipeAction.NEXT)])
    if controls.generated:
        rows.append([button(SwipeAction.REGENERATE), button(SwipeAction.CONTINUE)])
    return InlineKeyboardMarkup(rows) if rows else None


#: The data of the "2/3" button, which only says where the reply is among its alternatives.
SHOWN_DATA = "swipe:shown"
