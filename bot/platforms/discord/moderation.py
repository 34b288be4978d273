"""What the moderators' channels are told: moderation records (what was blocked, where, by
whom, and a link, but never the blocked content itself) and broken character edits."""

from __future__ import annotations

import asyncio
import logging

import discord

from bot.conversation.manager import ConversationManager
from bot.conversation.turn import ModerationReport
from bot.platforms.discord.events import PLATFORM
from bot.platforms.discord.transport import MESSAGE_LIMIT, NO_PINGS
from bot.platforms.text import split_message

#: How often a report waits for the first connection to be checked.
READY_POLL_SECONDS = 0.2

log = logging.getLogger("bot.platforms.discord")

#: What :meth:`discord.Client.get_channel` finds.
Channel = discord.abc.GuildChannel | discord.Thread | discord.abc.PrivateChannel


def message_link(report: ModerationReport) -> str | None:
    """The jump link to the message that was judged (the user's message)."""
    incoming = report.incoming
    if incoming.server_id is None or incoming.platform_message_id is None:
        return None
    channel = incoming.key.thread_id or incoming.key.chat_id
    return (
        f"https://discord.com/channels/{incoming.server_id}/{channel}/"
        f"{incoming.platform_message_id}"
    )


def moderation_record(report: ModerationReport) -> str:
    """One short line for the moderators."""
    event, incoming = report.event, report.incoming
    what = (
        f"A message by <@{event.author_id}>"
        if event.direction == "input"
        else f"{report.character.name}'s reply to <@{event.author_id}>"
    )
    channel = incoming.key.thread_id or incoming.key.chat_id
    link = message_link(report)
    where = f"in <#{channel}>" + (f" ({link})" if link else "")
    return f"Content filter: {what} {where} was flagged as {event.type_name}."


class ModerationReporter:
    """A moderation hook for the engine that posts Discord events to the moderators' channel."""

    def __init__(self, client: discord.Client) -> None:
        self._client = client

    async def __call__(self, report: ModerationReport) -> None:
        """Post ``report`` if it happened on Discord and the server chose a channel."""
        target = report.settings.moderators_chat_id
        if report.incoming.key.platform != PLATFORM or target is None:
            return
        channel = self._client.get_channel(int(target))
        if channel is None:
            log.warning("the moderators' channel %s is gone", target)
            return
        await post_to_moderators(channel, moderation_record(report))


class BrokenCharactersReporter:
    """A :data:`~bot.conversation.services.BrokenCharactersHook` that tells every moderators'
    channel about a broken edit of the character files (the log has it too)."""

    def __init__(self, client: discord.Client, manager: ConversationManager) -> None:
        self._client = client
        self._manager = manager

    async def __call__(self, text: str) -> None:
        """Post ``text`` in each moderators' channel this process can see (with shards in
        several processes, each posts in its own servers)."""
        # Problems found at start are told before Discord has connected; discord.py's own
        # ready event only exists once logging in has begun, so it cannot be awaited here.
        while not self._client.is_ready():  # noqa: ASYNC110
            await asyncio.sleep(READY_POLL_SECONDS)
        for target in await self._manager.policies.moderators_chats(PLATFORM):
            channel = self._client.get_channel(int(target))
            if channel is not None:  # None: another shard's, or gone
                await post_to_moderators(channel, text)


async def post_to_moderators(channel: Channel, text: str) -> None:
    """Post ``text`` in the moderators' ``channel``; a failure is logged, not raised."""
    if not isinstance(channel, discord.abc.Messageable):
        log.warning("the moderators' channel %s is not a text channel", channel.id)
        return
    try:
        for part in split_message(text, MESSAGE_LIMIT):
            await channel.send(part, allowed_mentions=NO_PINGS)
    except discord.HTTPException as error:
        log.warning("could not post to the moderators' channel %s: %s", channel.id, error)
