"""Who may use the admin commands, and where an adults-only character may live."""

from __future__ import annotations

import discord

from bot.characters.schema import Character
from bot.conversation.manager import ConversationManager
from bot.platforms.discord.events import PLATFORM

NOT_ADMIN = (
    "Only people with the **Manage Server** permission (or the role the admins chose with "
    "`/moderation admin-role`) can do this."
)
NSFW_ONLY = (
    "{name} is marked not-safe-for-work and can only be used in age-restricted channels "
    "(channel settings → Age-Restricted Channel)."
)


async def is_admin(interaction: discord.Interaction, manager: ConversationManager) -> bool:
    """Manage Server, or the server's configured admin role. In DMs everyone is admin of
    their own conversation."""
    if interaction.guild is None:
        return True
    if interaction.permissions.manage_guild:
        return True
    settings = await manager.policies.server_settings(PLATFORM, str(interaction.guild.id))
    if settings.admin_role_id is None or not isinstance(interaction.user, discord.Member):
        return False
    return any(str(role.id) == settings.admin_role_id for role in interaction.user.roles)


def age_restricted(channel: object) -> bool:
    """Whether ``channel`` (or a thread's parent) is age-restricted. DMs are not."""
    if isinstance(channel, discord.Thread):
        channel = channel.parent
    is_nsfw = getattr(channel, "is_nsfw", None)
    return bool(is_nsfw()) if callable(is_nsfw) else False


def nsfw_refusal(character: Character, channel: object) -> str | None:
    """Why ``character`` may not be used in ``channel``, or ``None`` when it may."""
    if character.nsfw and not age_restricted(channel):
        return NSFW_ONLY.format(name=character.name)
    return None
