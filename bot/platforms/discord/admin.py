"""Admin slash commands: /channel triggers and /moderation (policy, log, channel, admin-role).

Server-only; each checks Manage Server or the configured admin role.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import discord
from discord import app_commands

from bot.conversation import commands
from bot.conversation.commands import Caller
from bot.conversation.commands.moderation import COOLDOWN_AFTER
from bot.conversation.commands.triggers import (
    BOT_TURNS_IN_A_ROW,
    FOLLOW_UP_SECONDS,
    HALF_LIFE_SECONDS,
    RANDOM_CHANCE,
    SCENE_PAUSE_SECONDS,
    SCENE_TURNS,
)
from bot.conversation.manager import ConversationManager
from bot.conversation.moderation import ModerationAction
from bot.errors import NotAllowed
from bot.platforms.discord.checks import NOT_ADMIN, is_admin
from bot.platforms.discord.events import interaction_key
from bot.platforms.discord.transport import NO_PINGS

#: Moderation events shown by /moderation log.
LOG_LENGTH = 15


class DiscordMentions:
    """Chats, users and moments as Discord shows them (users are not pinged: NO_PINGS)."""

    def chat(self, chat_id: str) -> str:
        return f"<#{chat_id}>"

    def user(self, user_id: str) -> str:
        return f"<@{user_id}>"

    def time(self, when: datetime) -> str:
        return discord.utils.format_dt(when, "R")


MENTIONS = DiscordMentions()

# The command layer's ranges, as slash-command options.
FollowUpSeconds = app_commands.Range[float, FOLLOW_UP_SECONDS[0], FOLLOW_UP_SECONDS[1]]
RandomChance = app_commands.Range[float, RANDOM_CHANCE[0], RANDOM_CHANCE[1]]
HalfLifeSeconds = app_commands.Range[float, HALF_LIFE_SECONDS[0], HALF_LIFE_SECONDS[1]]
BotTurnsInARow = app_commands.Range[int, BOT_TURNS_IN_A_ROW[0], BOT_TURNS_IN_A_ROW[1]]
SceneTurns = app_commands.Range[int, SCENE_TURNS[0], SCENE_TURNS[1]]
ScenePauseSeconds = app_commands.Range[float, SCENE_PAUSE_SECONDS[0], SCENE_PAUSE_SECONDS[1]]
CooldownAfter = app_commands.Range[int, COOLDOWN_AFTER[0], COOLDOWN_AFTER[1]]


def caller_of(interaction: discord.Interaction, manager: ConversationManager) -> Caller:
    """Who used ``interaction``, where; admin rights as :func:`is_admin` says."""
    return Caller(
        interaction_key(interaction),
        str(interaction.user.id),
        lambda: is_admin(interaction, manager),
        NOT_ADMIN,
    )


async def _answer(interaction: discord.Interaction, text: str) -> None:
    await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_PINGS)


def _guild(interaction: discord.Interaction) -> discord.Guild:
    if interaction.guild is None:
        raise NotAllowed("This command works in a server only.")
    return interaction.guild


def _server_id(interaction: discord.Interaction) -> str:
    return str(_guild(interaction).id)


def channel_group(manager: ConversationManager) -> app_commands.Group:
    """``/channel triggers`` and ``/channel lorebooks``: when characters speak in this channel,
    and the world books they use here."""
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
        scene_turns="Character turns one message may lead to in a scene (1: no chains)",
        scene_pause_seconds="Seconds before a character answers another in a scene",
    )
    async def triggers(
        interaction: discord.Interaction,
        answer_all: bool | None = None,
        follow_up_seconds: FollowUpSeconds | None = None,
        random_chance: RandomChance | None = None,
        random_half_life_seconds: HalfLifeSeconds | None = None,
        allow_bots: bool | None = None,
        max_bot_turns: BotTurnsInARow | None = None,
        scene_turns: SceneTurns | None = None,
        scene_pause_seconds: ScenePauseSeconds | None = None,
    ) -> None:
        changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("answer_all", answer_all),
                ("follow_up_seconds", follow_up_seconds),
                ("random_chance", random_chance),
                ("random_half_life_seconds", random_half_life_seconds),
                ("allow_bots", allow_bots),
                ("max_consecutive_bot_turns", max_bot_turns),
                ("scene_turns", scene_turns),
                ("scene_pause_seconds", scene_pause_seconds),
            )
            if value is not None
        }
        text = await commands.chat_triggers(
            manager,
            caller_of(interaction, manager),
            (lambda settings: dataclasses.replace(settings, **changes)) if changes else None,
        )
        await _answer(interaction, text)

    @group.command(name="lorebooks", description="World books used in this channel")
    @app_commands.describe(
        add="A world book to use here (admins)", remove="A world book to stop using (admins)"
    )
    async def lorebooks(
        interaction: discord.Interaction, add: str | None = None, remove: str | None = None
    ) -> None:
        words = ["add", add] if add else ["remove", remove] if remove else []
        text = await commands.chat_lorebooks(manager, caller_of(interaction, manager), words)
        await _answer(interaction, text)

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
        cooldown_after: CooldownAfter | None = None,
    ) -> None:
        settings = await commands.moderation_settings(
            manager,
            caller_of(interaction, manager),
            _server_id(interaction),
            (
                lambda settings: commands.change_policy(
                    settings,
                    on_blocked_input=on_blocked_input,
                    on_blocked_output=on_blocked_output,
                    cooldown_after=cooldown_after,
                )
            )
            if (on_blocked_input, on_blocked_output, cooldown_after) != (None, None, None)
            else None,
        )
        await _answer(interaction, commands.describe_policy(settings, MENTIONS))

    @group.command(name="log", description="Recent content-filter events here (admins)")
    async def log(interaction: discord.Interaction) -> None:
        guild = _guild(interaction)
        here = {str(c.id) for c in guild.channels} | {str(t.id) for t in guild.threads}
        text = await commands.describe_events(
            manager, caller_of(interaction, manager), MENTIONS, among=here, limit=LOG_LENGTH
        )
        await _answer(interaction, text)

    @group.command(name="channel", description="Where moderation events are reported (admins)")
    @app_commands.describe(channel="The moderators' channel; leave out to stop reporting")
    async def channel(
        interaction: discord.Interaction, channel: discord.TextChannel | None = None
    ) -> None:
        chosen = str(channel.id) if channel is not None else None
        settings = await commands.moderation_settings(
            manager,
            caller_of(interaction, manager),
            _server_id(interaction),
            lambda settings: commands.report_to(settings, chosen),
        )
        await _answer(interaction, commands.describe_report_chat(settings, MENTIONS))

    @group.command(name="admin-role", description="A role that may use admin commands (admins)")
    @app_commands.describe(role="The role; leave out so that only Manage Server counts")
    async def admin_role(
        interaction: discord.Interaction, role: discord.Role | None = None
    ) -> None:
        chosen = str(role.id) if role is not None else None
        await commands.moderation_settings(
            manager,
            caller_of(interaction, manager),
            _server_id(interaction),
            lambda settings: dataclasses.replace(settings, admin_role_id=chosen),
        )
        await _answer(
            interaction,
            f"Members with <@&{chosen}> may use admin commands."
            if chosen
            else "Only Manage Server grants admin commands now.",
        )

    return group
