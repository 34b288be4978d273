"""Moderation records in a group's moderators' chat: what was flagged, where, about whom, and
a link, but never the flagged content itself. Admins choose the chat with
``/moderation report``."""

from __future__ import annotations

import logging

from telegram.error import TelegramError

from bot.conversation.turn import ModerationReport
from bot.platforms.telegram.handlers import PLATFORM
from bot.platforms.telegram.sink import TelegramReplies
from bot.platforms.telegram.transport import ChatTarget

__all__ = ["ModerationReporter", "message_link", "moderation_record"]

log = logging.getLogger("bot.platforms.telegram")

#: Supergroup ids are ``-100`` followed by the id that ``t.me/c/`` links use.
_SUPERGROUP_PREFIX = "-100"


def message_link(report: ModerationReport) -> str | None:
    """A ``t.me/c/…`` link to the judged message (supergroups only; members can open it)."""
    incoming = report.incoming
    chat_id, message_id = incoming.key.chat_id, incoming.platform_message_id
    if not chat_id.startswith(_SUPERGROUP_PREFIX) or message_id is None:
        return None
    topic = f"{incoming.key.thread_id}/" if incoming.key.thread_id else ""
    return f"https://t.me/c/{chat_id.removeprefix(_SUPERGROUP_PREFIX)}/{topic}{message_id}"


def moderation_record(report: ModerationReport) -> str:
    """A short plain-text record for the moderators."""
    event, incoming = report.event, report.incoming
    who = f"{incoming.author_name} (user {event.author_id})"
    what = (
        f"A message by {who}"
        if event.direction == "input"
        else f"{report.character.name}'s reply to {who}"
    )
    where = f"in “{incoming.channel_name}”" if incoming.channel_name else "in a private chat"
    link = message_link(report)
    return f"Content filter: {what} {where} was flagged as {event.type_name}." + (
        f"\n{link}" if link else ""
    )


class ModerationReporter:
    """An engine moderation hook posting Telegram events to the group's moderators' chat."""

    def __init__(self, replies: TelegramReplies) -> None:
        self._replies = replies

    async def __call__(self, report: ModerationReport) -> None:
        """Post ``report`` if it happened on Telegram and the group chose a chat for it."""
        target = report.settings.moderators_chat_id
        if report.incoming.key.platform != PLATFORM or target is None:
            return
        try:
            chat = ChatTarget(int(target))
            await self._replies.notice(chat, moderation_record(report), private=False)
        except (ValueError, TelegramError) as error:
            log.warning("could not post to the moderators' chat %s: %s", target, error)
