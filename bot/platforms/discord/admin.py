"""Admin slash commands: /channel triggers and /moderation (policy, log, channel, admin-role).

Server-only; each checks Manage Server or the configured admin role.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import discord
from discord import app_commands

from bot.conversation.manager import ConversationManager
from bot.conversation.moderation import ModerationAction
from bot.platforms.discord.checks import NOT_ADMIN, is_admin
from bot.platforms.discord.events import PLATFORM, interaction_key
from bot.platforms.discord.transport import NO_PINGS
from bot.platforms.triggers import describe_triggers
from bot.storage import ModerationEvent

#: Moderation events shown by /moderation log.
LOG_LENGTH = 15
#: How far back /moderation log looks across the platform before keeping this server's.
LOG_SCAN = 500


async def _answer(interaction: discord.Interaction, text: str) -> None:
    await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_PINGS)


async def _guard(interaction: discord.Interaction, manager: ConversationManager) -> bool:
    if await is_admin(interaction, manager):
        return True
    await _answer(interaction, NOT_ADMIN)
    return False


def channel_group(manager: ConversationManager) -> app_commands.Group:
    """``/channel triggers``: when characters speak in this channel."""
    group = app_commands.Group(
        name="channel", description="How characters behave in this channel", guild_only=True
    )

    @group.command(name="triggers", description="When characters speak here (admins)")
    @app_commands.describe(
        answer_all="Answer every message, addressed or not",
        follow_up_seconds="How long someone who just talked to a character goes on without @",
        random_chance="Chance (0-1) to join in uninvited right after being addressed",
        random_half_life_seconds="The chance halves after this many seconds",
        allow_bots="Answer other bots and webhooks",
        max_bot_turns="Bot messages answered in a row before a human must speak",
    )
    async def triggers(
        interaction: discord.Interaction,
        answer_all: bool | None = None,
        follow_up_seconds: app_commands.Range[float, 0, 3600] | None = None,
        random_chance: app_commands.Range[float, 0, 1] | None = None,
        random_half_life_seconds: app_commands.Range[float, 1, 86400] | None = None,
        allow_bots: bool | None = None,
        max_bot_turns: app_commands.Range[int, 0, 50] | None = None,
    ) -> None:
        if not await _guard(interaction, manager):
            return
        key = interaction_key(interaction)
        changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("answer_all", answer_all),
                ("follow_up_seconds", follow_up_seconds),
                ("random_chance", random_chance),
                ("random_half_life_seconds", random_half_life_seconds),
                ("allow_bots", allow_bots),
                ("max_consecutive_bot_turns", max_bot_turns),
            )
            if value is not None
        }
        settings = await manager.chat_settings(key)
        if changes:
            settings = dataclasses.replace(settings, **changes)
            await manager.set_chat_settings(key, settings)
        await _answer(interaction, describe_triggers(settings))

    return group


def moderation_group(manager: ConversationManager) -> app_commands.Group:
    """``/moderation policy|log|channel|admin-role``."""
    group = app_commands.Group(
        name="moderation", description="Content filter settings of this server", guild_only=True
    )

    @group.command(name="policy", description="What happens when the filter blocks (admins)")
    @app_commands.describe(
        on_blocked_input="When a user's message is blocked",
        on_blocked_output="When a character's reply is blocked",
        cooldown_after="Flags within the window before a user is ignored for a while (0: never)",
    )
    async def policy(
        interaction: discord.Interaction,
        on_blocked_input: ModerationAction | None = None,
        on_blocked_output: ModerationAction | None = None,
        cooldown_after: app_commands.Range[int, 0, 100] | None = None,
    ) -> None:
        if not await _guard(interaction, manager) or interaction.guild is None:
            return
        server_id = str(interaction.guild.id)
        settings = await manager.server_settings(PLATFORM, server_id)
        changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("on_blocked_input", on_blocked_input),
                ("on_blocked_output", on_blocked_output),
                ("cooldown_after", cooldown_after),
            )
            if value is not None
        }
        if changes:
            moderation = dataclasses.replace(settings.moderation, **changes)
            settings = dataclasses.replace(settings, moderation=moderation)
            await manager.set_server_settings(PLATFORM, server_id, settings)
        rules = settings.moderation
        channel = f"<#{settings.moderators_chat_id}>" if settings.moderators_chat_id else "not set"
        await _answer(
            interaction,
            f"Blocked messages: {rules.on_blocked_input}. Blocked replies: "
            f"{rules.on_blocked_output}. Cool-down after {rules.cooldown_after} flags. "
            f"Moderators' channel: {channel}.",
        )

    @group.command(name="log", description="Recent content-filter events here (admins)")
    async def log(interaction: discord.Interaction) -> None:
        if not await _guard(interaction, manager) or interaction.guild is None:
            return
        guild = interaction.guild
        here = {str(c.id) for c in guild.channels} | {str(t.id) for t in guild.threads}
        events = await manager.moderation_log(PLATFORM, limit=LOG_SCAN)
        ours = [event for event in events if event.chat_id in here][:LOG_LENGTH]
        if not ours:
            await _answer(interaction, "No content-filter events in this server.")
            return
        await _answer(interaction, "\n".join(log_line(event) for event in ours))

    @group.command(name="channel", description="Where moderation events are reported (admins)")
    @app_commands.describe(channel="The moderators' channel; leave out to stop reporting")
    async def channel(
        interaction: discord.Interaction, channel: discord.TextChannel | None = None
    ) -> None:
        if not await _guard(interaction, manager) or interaction.guild is None:
            return
        server_id = str(interaction.guild.id)
        settings = await manager.server_settings(PLATFORM, server_id)
        chosen = str(channel.id) if channel is not None else None
        await manager.set_server_settings(
            PLATFORM, server_id, dataclasses.replace(settings, moderators_chat_id=chosen)
        )
        await _answer(
            interaction,
            f"Moderation events go to <#{chosen}>." if chosen else "Moderation reports are off.",
        )

    @group.command(name="admin-role", description="A role that may use admin commands (admins)")
    @app_commands.describe(role="The role; leave out so that only Manage Server counts")
    async def admin_role(
        interaction: discord.Interaction, role: discord.Role | None = None
    ) -> None:
        if not await _guard(interaction, manager) or interaction.guild is None:
            return
        server_id = str(interaction.guild.id)
        settings = await manager.server_settings(PLATFORM, server_id)
        chosen = str(role.id) if role is not None else None
        await manager.set_server_settings(
            PLATFORM, server_id, dataclasses.replace(settings, admin_role_id=chosen)
        )
        await _answer(
            interaction,
            f"Members with <@&{chosen}> may use admin commands."
            if chosen
            else "Only Manage Server grants admin commands now.",
        )

    return group


def log_line(event: ModerationEvent) -> str:
    """One moderation event, without the blocked content."""
    when = discord.utils.format_dt(event.created_at, "R")
    what = "message" if event.direction == "input" else "reply"
    return f"{when} in <#{event.chat_id}>: a {what} by <@{event.author_id}> — {event.type_name}"
