"""Slash commands for everyone: /character, /reset, /persona, /forget-me, /usage.

Admin-only actions (binding characters, /reset in a server) check Manage Server or the
configured admin role in the handler, so that the role works too; Discord's own
``default_member_permissions`` would hide them from that role.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import discord
from discord import app_commands

from bot.characters.schema import Character
from bot.conversation.manager import ConversationManager, UsageReport
from bot.platforms.discord.admin import channel_group, moderation_group
from bot.platforms.discord.checks import NOT_ADMIN, is_admin, nsfw_refusal
from bot.platforms.discord.events import PLATFORM, interaction_key
from bot.platforms.discord.transport import NO_PINGS
from bot.platforms.discord.views import Confirm

log = logging.getLogger("bot.platforms.discord")

#: Discord shows at most 25 autocomplete choices.
MAX_CHOICES = 25


async def say(interaction: discord.Interaction, text: str, *, private: bool = True) -> None:
    """Answer an interaction; private (ephemeral) unless the channel should see it."""
    await interaction.response.send_message(text, ephemeral=private, allowed_mentions=NO_PINGS)


def install_commands(tree: app_commands.CommandTree[Any], manager: ConversationManager) -> None:
    """Add every Troupe slash command to ``tree`` (synced by the client at start)."""
    tree.add_command(_character_group(manager))
    tree.add_command(_persona_group(manager))
    tree.add_command(channel_group(manager))
    tree.add_command(moderation_group(manager))
    for command in _single_commands(manager):
        tree.add_command(command)

    async def on_error(
        interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        # Every failure gets a visible answer; the bot carries on.
        log.error("slash command failed", exc_info=error)
        text = "Something went wrong with that command; please try again."
        with contextlib.suppress(discord.HTTPException):
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await say(interaction, text)

    tree.on_error = on_error  # type: ignore[method-assign]


def character_choices(manager: ConversationManager, typed: str) -> list[app_commands.Choice[str]]:
    """Characters whose id, name or nickname starts with (or else contains) ``typed``."""
    needle = typed.strip().lower()

    def score(character: Character) -> int | None:
        names = [character.id, character.name, *character.nicknames]
        if any(name.lower().startswith(needle) for name in names):
            return 0
        if any(needle in name.lower() for name in names):
            return 1
        return None

    ranked = sorted(
        (
            (rank, character)
            for character in manager.characters
            if (rank := score(character)) is not None
        ),
        key=lambda pair: (pair[0], pair[1].name.lower(), pair[1].id),
    )
    return [
        app_commands.Choice(name=character.name, value=character.id)
        for _, character in ranked[:MAX_CHOICES]
    ]


def _character_group(manager: ConversationManager) -> app_commands.Group:
    group = app_commands.Group(name="character", description="The characters of this channel")

    async def names(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return character_choices(manager, current)

    async def pick(interaction: discord.Interaction, name: str) -> Character | None:
        """The character called ``name``, after the admin and age checks (answered if not)."""
        if not await is_admin(interaction, manager):
            await say(interaction, NOT_ADMIN)
            return None
        try:
            character = manager.characters.get(name)
        except KeyError as error:
            await say(interaction, str(error.args[0]))
            return None
        refusal = nsfw_refusal(character, interaction.channel)
        if refusal is not None:
            await say(interaction, refusal)
            return None
        return character

    @group.command(name="set", description="Make a character the main one here (admins)")
    @app_commands.describe(name="The character")
    @app_commands.autocomplete(name=names)
    async def set_(interaction: discord.Interaction, name: str) -> None:
        if (character := await pick(interaction, name)) is None:
            return
        await manager.set_character(interaction_key(interaction), character.id)
        await say(interaction, f"{character.name} now lives here.", private=False)

    @group.command(name="add", description="Bring another character into the scene (admins)")
    @app_commands.describe(name="The character")
    @app_commands.autocomplete(name=names)
    async def add(interaction: discord.Interaction, name: str) -> None:
        if (character := await pick(interaction, name)) is None:
            return
        await manager.add_to_scene(interaction_key(interaction), character.id)
        await say(interaction, f"{character.name} joins the scene.", private=False)

    @group.command(name="remove", description="Send a character out of the scene (admins)")
    @app_commands.describe(name="The character")
    @app_commands.autocomplete(name=names)
    async def remove(interaction: discord.Interaction, name: str) -> None:
        if not await is_admin(interaction, manager):
            await say(interaction, NOT_ADMIN)
            return
        try:
            character = await manager.remove_from_scene(interaction_key(interaction), name)
        except (KeyError, ValueError) as error:
            await say(interaction, str(error.args[0]))
            return
        await say(interaction, f"{character.name} leaves the scene.", private=False)

    @group.command(name="list", description="Who is here, and who could be")
    async def list_(interaction: discord.Interaction) -> None:
        scene = await manager.scene(interaction_key(interaction))
        here = ", ".join(
            f"**{c.name}**" + (" (main)" if index == 0 else "") for index, c in enumerate(scene)
        )
        others = ", ".join(c.name for c in manager.characters if c not in scene)
        await say(interaction, f"Here: {here}.\nAvailable: {others or 'nobody else'}.")

    @group.command(name="info", description="About a character (default: the main one here)")
    @app_commands.describe(name="The character")
    @app_commands.autocomplete(name=names)
    async def info(interaction: discord.Interaction, name: str | None = None) -> None:
        try:
            character = (
                manager.characters.get(name)
                if name
                else await manager.character_for(interaction_key(interaction))
            )
        except KeyError as error:
            await say(interaction, str(error.args[0]))
            return
        await say(interaction, describe(character))

    return group


def describe(character: Character) -> str:
    """A short card about ``character`` for /character info."""
    lines = [f"**{character.name}**"]
    if character.nicknames:
        lines.append("Also answers to: " + ", ".join(character.nicknames))
    text = character.render(character.description, user="you").strip()
    lines.append(text if len(text) <= 600 else text[:599].rstrip() + "…")
    if character.nsfw:
        lines.append("Age-restricted channels only.")
    return "\n".join(lines)


def _persona_group(manager: ConversationManager) -> app_commands.Group:
    group = app_commands.Group(
        name="persona", description="Who you are in the story (sent to every character)"
    )

    @group.command(name="set", description="Set who you are in the story")
    @app_commands.describe(text="For example: a travelling bard with a broken lute")
    async def set_(
        interaction: discord.Interaction, text: app_commands.Range[str, 1, 1000]
    ) -> None:
        await manager.set_persona(PLATFORM, str(interaction.user.id), text)
        await say(interaction, "Persona set. Characters will know you as: " + text)

    @group.command(name="show", description="Show your persona")
    async def show(interaction: discord.Interaction) -> None:
        persona = await manager.persona(PLATFORM, str(interaction.user.id))
        await say(
            interaction, f"Your persona: {persona}" if persona else "You have no persona set."
        )

    @group.command(name="clear", description="Clear your persona")
    async def clear(interaction: discord.Interaction) -> None:
        await manager.set_persona(PLATFORM, str(interaction.user.id), None)
        await say(interaction, "Persona cleared.")

    return group


def _single_commands(manager: ConversationManager) -> list[app_commands.Command[Any, ..., None]]:
    @app_commands.command(name="reset", description="Forget this channel's conversation")
    async def reset(interaction: discord.Interaction) -> None:
        if not await is_admin(interaction, manager):
            await say(interaction, NOT_ADMIN)
            return
        key = interaction_key(interaction)

        async def erase() -> str:
            deleted = await manager.reset(key)
            return f"Conversation reset: {deleted} messages forgotten."

        await interaction.response.send_message(
            "Forget this conversation's whole history? The characters will not remember it.",
            view=Confirm(interaction.user.id, erase),
            ephemeral=True,
        )

    @app_commands.command(name="forget-me", description="Erase everything stored about you")
    async def forget_me(interaction: discord.Interaction) -> None:
        user_id = str(interaction.user.id)

        async def erase() -> str:
            report = await manager.forget(PLATFORM, user_id)
            return (
                f"Done: {report.messages} messages, {report.personas} persona, "
                f"{report.model_calls} usage records and {report.moderation_events} "
                "moderation records erased."
            )

        await interaction.response.send_message(
            "Erase every message, your persona and all records about you, everywhere?",
            view=Confirm(interaction.user.id, erase),
            ephemeral=True,
        )

    @app_commands.command(name="usage", description="Tokens used and their estimated cost")
    async def usage(interaction: discord.Interaction) -> None:
        key = interaction_key(interaction)
        lines = [
            "You: " + usage_line(await manager.usage(PLATFORM, author_id=str(interaction.user.id))),
            "This channel: " + usage_line(await manager.usage(PLATFORM, chat_id=key.chat_id)),
        ]
        if interaction.guild is not None:
            server = await manager.usage(PLATFORM, server_id=str(interaction.guild.id))
            lines.append("This server: " + usage_line(server))
        await say(interaction, "\n".join(lines))

    return [reset, forget_me, usage]


def usage_line(report: UsageReport) -> str:
    """``1,234 tokens in 5 replies (≈ $0.0012)``."""
    replies = "reply" if report.calls == 1 else "replies"
    return (
        f"{report.total_tokens:,} tokens in {report.calls:,} {replies} (≈ ${report.cost_usd:.4f})"
    )
