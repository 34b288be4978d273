"""The invite link a server owner opens to add the bot to a server."""

from __future__ import annotations

import discord

#: What the bot needs in channels with characters: see and post (threads too), read the
#: message a user replies to, and post as each character through a webhook.
INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    read_message_history=True,
    manage_webhooks=True,
    embed_links=True,
)


def invite_url(application_id: int) -> str:
    """The OAuth2 URL that adds the bot with its slash commands and the permissions above."""
    return discord.utils.oauth_url(
        application_id,
        permissions=INVITE_PERMISSIONS,
        scopes=("bot", "applications.commands"),
    )
