"""Channel webhooks through which characters post with their own name and avatar.

One webhook per channel, created on first use (or found again after a restart: the one
this bot created), cached, and shared by every character and every thread of the channel.
Discord keeps webhooks on the parent channel; threads post through it with ``thread=``.

Avatars: a character's URL avatar is sent with each message. A local ``avatar`` file has no
URL Discord could fetch, so such characters post with the webhook's default avatar (one
shared webhook cannot carry several uploaded avatars, and a webhook per character would run
into Discord's 15-webhooks-per-channel limit).
"""

from __future__ import annotations

import logging

import discord

from bot.conversation.keyed import KeyedLocks

log = logging.getLogger("bot.platforms.discord")

#: The name of the webhooks this bot creates (a character's name replaces it per message).
WEBHOOK_NAME = "Troupe characters"
#: Discord refuses webhook usernames containing these words, and longer than 80 characters.
FORBIDDEN_NAME_PARTS = ("discord", "clyde")
MAX_USERNAME = 80

WebhookChannel = discord.TextChannel | discord.ForumChannel | discord.VoiceChannel


def usable_username(name: str) -> bool:
    """Whether Discord accepts ``name`` as a webhook message's username."""
    lowered = name.lower()
    return 1 <= len(name) <= MAX_USERNAME and not any(p in lowered for p in FORBIDDEN_NAME_PARTS)


class Webhooks:
    """The webhook cache of one bot: per channel, our webhook or ``None`` when not allowed."""

    def __init__(self, client: discord.Client) -> None:
        self._client = client
        self._by_channel: dict[int, discord.Webhook | None] = {}
        self._locks: KeyedLocks[int] = KeyedLocks()
        #: Ids of webhooks this bot created; their messages are the characters' own.
        self._ours: set[int] = set()
        #: Channels whose webhook list has been read (to recognise ours after a restart).
        self._listed: set[int] = set()

    async def recognise(self, channel: discord.abc.MessageableChannel, webhook_id: int) -> bool:
        """Whether ``webhook_id`` (seen on a message in ``channel``) is ours, reading the
        channel's webhooks once when it is not known yet. Never creates a webhook."""
        if webhook_id in self._ours:
            return True
        parent = webhook_channel(channel)
        if parent is None:
            return False
        async with self._locks.hold(parent.id):
            if parent.id not in self._listed:
                await self._list(parent)
        return webhook_id in self._ours

    async def for_channel(self, channel: WebhookChannel) -> discord.Webhook | None:
        """Our webhook in ``channel`` (created once), or ``None`` when there can be none
        (no Manage Webhooks, or the channel is full)."""
        if channel.id in self._by_channel:
            return self._by_channel[channel.id]
        async with self._locks.hold(channel.id):
            if channel.id not in self._by_channel:
                self._by_channel[channel.id] = await self._find_or_create(channel)
            return self._by_channel[channel.id]

    def forget(self, channel_id: int) -> None:
        """Drop the cached webhook (someone deleted it, or permissions changed)."""
        self._by_channel.pop(channel_id, None)
        self._listed.discard(channel_id)

    async def _list(self, channel: WebhookChannel) -> discord.Webhook | None:
        """Read the channel's webhooks: remember ours, return one we can post with."""
        self._listed.add(channel.id)
        me = channel.guild.me
        if not channel.permissions_for(me).manage_webhooks:
            return None
        try:
            hooks = await channel.webhooks()
        except discord.HTTPException as error:
            log.warning("cannot list the webhooks of channel %s: %s", channel.id, error)
            return None
        mine = [hook for hook in hooks if hook.user is not None and hook.user.id == me.id]
        self._ours.update(hook.id for hook in mine)
        return next((hook for hook in mine if hook.token), None)

    async def _find_or_create(self, channel: WebhookChannel) -> discord.Webhook | None:
        if not channel.permissions_for(channel.guild.me).manage_webhooks:
            return None
        found = await self._list(channel)
        if found is not None:
            return found
        try:
            created = await channel.create_webhook(name=WEBHOOK_NAME, reason="Troupe characters")
        except discord.HTTPException as error:
            # e.g. 30007: the channel already has 15 webhooks. The bot posts as itself there.
            log.warning("cannot create a webhook in channel %s: %s", channel.id, error)
            return None
        self._ours.add(created.id)
        return created


def webhook_channel(channel: object) -> WebhookChannel | None:
    """The channel that holds the webhooks for ``channel`` (a thread's parent)."""
    if isinstance(channel, discord.Thread):
        channel = channel.parent
    if isinstance(channel, discord.TextChannel | discord.ForumChannel | discord.VoiceChannel):
        return channel
    return None
