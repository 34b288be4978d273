"""Start-up checks, explained in plain words: the message-content intent, and the channel
permissions characters need."""

from __future__ import annotations

from collections.abc import Iterable

import discord

MESSAGE_CONTENT_MISSING = (
    "Discord has not given this bot the Message Content intent, so it cannot read what people "
    "write. Open https://discord.com/developers/applications, pick the application, go to "
    "Bot → Privileged Gateway Intents, switch on MESSAGE CONTENT INTENT, save, and start "
    "troupe again."
)

#: Each permission characters need, and what goes wrong without it.
NEEDED: tuple[tuple[str, str, str], ...] = (
    ("send_messages", "Send Messages", "characters cannot answer there at all"),
    (
        "send_messages_in_threads",
        "Send Messages in Threads",
        "characters cannot answer in its threads",
    ),
    (
        "read_message_history",
        "Read Message History",
        "replies to a character's message may not be recognised",
    ),
    (
        "manage_webhooks",
        "Manage Webhooks",
        "characters post as the bot with their name in bold instead of under their own "
        "name and avatar",
    ),
)


def has_message_content(flags: discord.ApplicationFlags) -> bool:
    """Whether the application may receive message content (the portal switch is on)."""
    return flags.gateway_message_content or flags.gateway_message_content_limited


def channel_problems(guild: discord.Guild) -> list[str]:
    """One plain sentence per missing permission in ``guild``, naming the channels.

    Only text channels the bot can see count: characters are bound to every channel in
    which someone talks to them.
    """
    me = guild.me
    problems = []
    for attribute, label, consequence in NEEDED:
        missing = [
            channel
            for channel in _visible_text_channels(guild.text_channels, me)
            if not getattr(channel.permissions_for(me), attribute)
        ]
        if missing:
            where = ", ".join(f"#{channel.name}" for channel in missing)
            problems.append(
                f'In server "{guild.name}" the bot lacks {label} in {where}: {consequence}. '
                f"Give the bot's role {label} there (Server Settings → Roles, or the channel's "
                "Permissions)."
            )
    return problems


def _visible_text_channels(
    channels: Iterable[discord.TextChannel], me: discord.Member
) -> list[discord.TextChannel]:
    return [channel for channel in channels if channel.permissions_for(me).view_channel]
