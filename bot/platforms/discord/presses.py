"""What happens when a swipe button (:mod:`bot.platforms.discord.swipes`) is pressed."""

from __future__ import annotations

import contextlib
from typing import Any

import discord

from bot.conversation import commands
from bot.conversation.manager import ConversationManager
from bot.conversation.swipes import SwipeAction
from bot.errors import Refusal, TooLate
from bot.platforms.discord.admin import caller_of
from bot.platforms.discord.sink import DiscordReplies
from bot.platforms.discord.transport import NO_PINGS


async def swipe_pressed(
    interaction: discord.Interaction[Any],
    action: SwipeAction,
    message_id: int,
    manager: ConversationManager,
    replies: DiscordReplies,
) -> None:
    """Acknowledge the press, then rewrite the reply in place; a refusal is an ephemeral
    answer to the one who pressed (too late also takes the buttons away)."""
    channel = interaction.channel
    if not isinstance(channel, discord.abc.Messageable):
        return
    # Within Discord's 3 seconds, without a message: the reply itself changes.
    await interaction.response.defer()
    try:
        await commands.swipe(
            manager,
            caller_of(interaction, manager),
            action,
            replies.sink(channel),
            message_id=message_id,
            channel_name=getattr(channel, "name", None),
        )
    except Refusal as refusal:
        if isinstance(refusal, TooLate):
            with contextlib.suppress(discord.HTTPException):
                await interaction.edit_original_response(view=None)
        await interaction.followup.send(str(refusal), ephemeral=True, allowed_mentions=NO_PINGS)
