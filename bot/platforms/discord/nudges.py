"""``/nudges``: whether characters speak first in a channel (its admins decide) or in a DM
(its user decides), as Discord slash commands over :mod:`bot.conversation.commands.nudges`."""

from __future__ import annotations

import discord
from discord import app_commands

from bot.conversation import commands
from bot.conversation.commands.nudges import MAX_PER_DAY, QUIET_MINUTES
from bot.conversation.manager import ConversationManager
from bot.platforms.discord.admin import caller_of


async def _answer(
    interaction: discord.Interaction, manager: ConversationManager, *changes: list[str]
) -> None:
    text = await commands.nudges_command(
        manager,
        caller_of(interaction, manager),
        *changes,
        private=interaction.guild is None,
    )
    await interaction.response.send_message(
        text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
    )


def nudges_group(manager: ConversationManager) -> app_commands.Group:
    """``/nudges show``, ``on``, ``off`` and ``set``."""
    group = app_commands.Group(name="nudges", description="Whether characters may speak first here")

    @group.command(name="show", description="Whether and when characters speak first here")
    async def show(interaction: discord.Interaction) -> None:
        await _answer(interaction, manager)

    @group.command(name="on", description="Let characters speak first here (DMs: you; else admins)")
    async def on(interaction: discord.Interaction) -> None:
        await _answer(interaction, manager, ["on"])

    @group.command(name="off", description="Characters no longer speak first here")
    async def off(interaction: discord.Interaction) -> None:
        await _answer(interaction, manager, ["off"])

    @group.command(name="set", description="When characters speak first here")
    @app_commands.describe(
        quiet_minutes="Minutes without a message before a character opens a topic (0: never)",
        quiet_hours="HH:MM-HH:MM local time with no nudges, e.g. 22:00-08:00 (or off)",
        timezone="The time zone of quiet hours and schedules, e.g. Europe/Berlin",
        max_per_day="The most nudges a day",
        schedule="Greetings on a 5-field cron schedule, e.g. 0 9 * * mon-fri (or off)",
    )
    async def set_(
        interaction: discord.Interaction,
        quiet_minutes: app_commands.Range[int, QUIET_MINUTES[0], QUIET_MINUTES[1]] | None = None,
        quiet_hours: str | None = None,
        timezone: str | None = None,
        max_per_day: app_commands.Range[int, MAX_PER_DAY[0], MAX_PER_DAY[1]] | None = None,
        schedule: str | None = None,
    ) -> None:
        given = {
            "quiet": quiet_minutes,
            "hours": quiet_hours,
            "timezone": timezone,
            "max": max_per_day,
            "schedule": schedule,
        }
        changes = [
            [name, *str(value).split()] for name, value in given.items() if value is not None
        ]
        await _answer(interaction, manager, *changes)

    return group
