"""Telegram updates → the engine: messages, edits, membership changes and errors.

A message becomes a neutral :class:`~bot.conversation.incoming.Incoming` with the facts only
Telegram knows (private chat, @mention of the bot, reply to the bot's message, forum topic);
the engine's trigger policy decides whether a character answers. Each update runs in its own
task (``block=False``), started in the order updates arrive, so one slow reply never holds up
other chats and messages are stored in order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Any

from telegram import Message, MessageEntity, Update, User
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import Forbidden, TelegramError
from telegram.ext import BaseHandler, ChatMemberHandler, ContextTypes, MessageHandler, filters

from bot.conversation.incoming import ConversationKey, Incoming
from bot.conversation.turn import UNEXPECTED
from bot.platforms.telegram.admins import Admins
from bot.platforms.telegram.sink import TelegramReplies
from bot.platforms.telegram.transport import PLATFORM, ChatTarget, UserBlocked

__all__ = [
    "PLATFORM",
    "Updates",
    "chat_target",
    "conversation_key",
    "is_private",
    "to_incoming",
]

log = logging.getLogger("bot.platforms.telegram")


def is_private(message: Message) -> bool:
    """Whether ``message`` is in a one-to-one chat with the bot."""
    return message.chat.type == ChatType.PRIVATE


def _topic(message: Message) -> int | None:
    """The forum topic ``message`` is in; ``None`` outside forums and in the General topic."""
    if message.chat.is_forum and message.is_topic_message:
        return message.message_thread_id
    return None


def conversation_key(message: Message) -> ConversationKey:
    """The conversation ``message`` belongs to: its chat, or its forum topic."""
    topic = _topic(message)
    return ConversationKey(PLATFORM, str(message.chat.id), str(topic) if topic else "")


def chat_target(message: Message) -> ChatTarget:
    """Where an answer to ``message`` goes; in groups it quotes the message it answers."""
    quote = None if is_private(message) else message.message_id
    return ChatTarget(message.chat.id, _topic(message), reply_to=quote)


def message_text(message: Message) -> str | None:
    """What ``message`` says: its text, or the caption of a photo, video or file.

    The media itself never reaches the model (M2-her reads text only).
    """
    return message.text if message.text is not None else message.caption


def to_incoming(message: Message, bot: User) -> Incoming:
    """The engine's view of a message with text (or a caption) from a person or a bot."""
    author = message.from_user
    text = message_text(message)
    if author is None or text is None:
        raise ValueError("only messages with text and an author reach the engine")
    mentions_bot, mentions_others = _mentions(message, bot)
    replied = _replied_message(message)
    private = is_private(message)
    return Incoming(
        key=conversation_key(message),
        author_id=str(author.id),
        author_name=author.full_name,
        text=text,
        is_direct=private,
        mentions_bot=mentions_bot,
        replies_to_bot=replied is not None
        and replied.from_user is not None
        and replied.from_user.id == bot.id,
        mentions_others=mentions_others,
        author_is_bot=author.is_bot,
        platform_message_id=str(message.message_id),
        reply_to_message_id=str(replied.message_id) if replied else None,
        server_id=None if private else str(message.chat.id),
        channel_name=message.chat.title,
    )


def _replied_message(message: Message) -> Message | None:
    replied = message.reply_to_message
    # In a forum every plain message in a topic "replies" to the topic's creation message.
    if replied is None or replied.forum_topic_created is not None:
        return None
    return replied


def _mentions(message: Message, bot: User) -> tuple[bool, bool]:
    """Whether ``message`` @mentions the bot, and whether it mentions anyone else."""
    me = others = False
    kinds: list[str | None] = [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
    if message.text is not None:
        mentions = message.parse_entities(kinds)
    else:
        mentions = message.parse_caption_entities(kinds)
    for entity, text in mentions.items():
        if entity.type == MessageEntity.MENTION:
            is_bot = text[1:].lower() == (bot.username or "").lower()
        else:
            is_bot = entity.user is not None and entity.user.id == bot.id
        me, others = me or is_bot, others or not is_bot
    return me, others


class Updates:
    """The handlers of ordinary updates: new and edited messages, the bot's membership."""

    def __init__(self, replies: TelegramReplies, admins: Admins) -> None:
        self._replies = replies
        self._admins = admins

    def handlers(self) -> list[BaseHandler[Any, Any, Any]]:
        """The PTB handlers to register (after the command handlers)."""
        # A caption is what a photo, video or file says; commands come only as text.
        text = (filters.TEXT & ~filters.COMMAND) | filters.CAPTION
        return [
            MessageHandler(filters.UpdateType.MESSAGE & text, self.on_message, block=False),
            MessageHandler(filters.UpdateType.EDITED_MESSAGE & text, self.on_edit, block=False),
            ChatMemberHandler(self.on_membership, ChatMemberHandler.MY_CHAT_MEMBER),
        ]

    async def on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Hand a message to the engine; it answers through a sink if a character should."""
        message = update.message
        if message is None or message.from_user is None or message_text(message) is None:
            return
        incoming = to_incoming(message, context.bot.bot)
        if not incoming.is_direct:
            # Admins are spared the limits. The lookup keeps this chat's messages in order.
            admin = await self._admins.probably_admin(message.chat.id, message.from_user.id)
            incoming = dataclasses.replace(incoming, author_is_admin=admin)
        sink = self._replies.sink(incoming.key, chat_target(message), private=incoming.is_direct)
        await self._replies.manager.handle(incoming, sink)

    async def on_edit(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A person edited a message: the history the characters see follows, and the
        character's reply to it is written again if nothing came after that reply."""
        message = update.edited_message
        if message is None or (text := message_text(message)) is None:
            return
        key = conversation_key(message)
        sink = self._replies.sink(key, chat_target(message), private=is_private(message))
        await self._replies.manager.edit_message(key, str(message.message_id), text, sink)

    async def on_membership(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Note when a user blocks the bot or a group removes it; nothing else to do."""
        change = update.my_chat_member
        if change is None:
            return
        status = change.new_chat_member.status
        if status in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT):
            log.info("the bot can no longer post in chat %s (%s)", change.chat.id, status)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log a failed update and tell the chat briefly; a blocked bot stays quiet."""
        error = context.error
        if isinstance(error, UserBlocked | Forbidden):
            log.info("update not answered: %s", error)
            return
        log.error("an update failed", exc_info=error)
        if not isinstance(update, Update) or update.effective_message is None:
            return
        if update.callback_query is not None:
            # Stop the spinner on the button (harmless if it was answered already).
            with contextlib.suppress(TelegramError):
                await update.callback_query.answer(UNEXPECTED)
        message = update.effective_message
        try:
            await self._replies.notice(
                chat_target(message), UNEXPECTED, private=is_private(message)
            )
        except Exception:
            log.warning("could not tell chat %s about a failure", message.chat.id, exc_info=True)
