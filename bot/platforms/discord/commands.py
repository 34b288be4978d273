"""Slash commands for everyone: /character, /reset, /persona, /memory, /forget-me, /usage.

Admin-only actions (binding characters, /reset in a server) check Manage Server or the
configured admin role in the handler, so that the role works too; Discord's own
``default_member_permissions`` would hide them from that role.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from bot.characters.schema import Character
from bot.conversation import commands
from bot.conversation.commands import PERSONA_MAX
from bot.conversation.commands.memory import SUMMARY_MAX
from bot.conversation.manager import ConversationManager
from bot.errors import AdultsOnly, Refusal
from bot.platforms.discord.admin import caller_of, channel_group, moderation_group
from bot.platforms.discord.checks import nsfw_refusal
from bot.platforms.discord.nudges import nudges_group
from bot.platforms.discord.sink import DiscordReplies
from bot.platforms.discord.transport import NO_PINGS
from bot.platforms.discord.views import Confirm

log = logging.getLogger("bot.platforms.discord")

#: Discord shows at most 25 autocomplete choices.
MAX_CHOICES = 25


async def say(interaction: discord.Interaction, text: str, *, private: bool = True) -> None:
    """Answer an interaction; private (ephemeral) unless the channel should see it."""
    await interaction.response.send_message(text, ephemeral=private, allowed_mentions=NO_PINGS)


def install_commands(
    tree: app_commands.CommandTree[Any], manager: ConversationManager, replies: DiscordReplies
) -> None:
    """Add every Troupe slash command to ``tree`` (synced by the client at start); greetings
    go out through ``replies``."""
    tree.add_command(_character_group(manager, replies))
    tree.add_command(_persona_group(manager))
    tree.add_command(_memory_group(manager))
    tree.add_command(channel_group(manager))
    tree.add_command(moderation_group(manager))
    tree.add_command(nudges_group(manager))
    for command in _single_commands(manager):
        tree.add_command(command)

    async def on_error(
        interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        # Every failure gets a visible answer; the bot carries on.
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        if isinstance(cause, Refusal):
            text = str(cause)
        else:
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


def _character_group(manager: ConversationManager, replies: DiscordReplies) -> app_commands.Group:
    group = app_commands.Group(name="character", description="The characters of this channel")

    async def names(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return character_choices(manager, current)

    def admit(interaction: discord.Interaction) -> commands.Admit:
        """Adults-only characters only in age-restricted channels."""

        def check(character: Character) -> None:
            refusal = nsfw_refusal(character, interaction.channel)
            if refusal is not None:
                raise AdultsOnly(refusal)

        return check

    @group.command(name="set", description="Make a character the main one here (admins)")
    @app_commands.describe(name="The character")
    @app_commands.autocomplete(name=names)
    async def set_(interaction: discord.Interaction, name: str) -> None:
        caller = caller_of(interaction, manager)
        done = await commands.make_main(manager, caller, name, admit(interaction))
        await say(interaction, done, private=False)
        channel = interaction.channel
        if isinstance(channel, discord.abc.Messageable):
            # A conversation opened this way starts as a new one does: with a greeting
            # (in a server channel, a group-only one may be picked too).
            await manager.greet(
                caller.key,
                replies.sink(channel),
                user_name=interaction.user.display_name,
                group=interaction.guild_id is not None,
            )

    @group.command(name="add", description="Bring another character into the scene (admins)")
    @app_commands.describe(name="The character")
    @app_commands.autocomplete(name=names)
    async def add(interaction: discord.Interaction, name: str) -> None:
        caller = caller_of(interaction, manager)
        done = await commands.join_scene(manager, caller, name, admit(interaction))
        await say(interaction, done, private=False)

    @group.command(name="remove", description="Send a character out of the scene (admins)")
    @app_commands.describe(name="The character")
    @app_commands.autocomplete(name=names)
    async def remove(interaction: discord.Interaction, name: str) -> None:
        done = await commands.leave_scene(manager, caller_of(interaction, manager), name)
        await say(interaction, done, private=False)

    @group.command(name="list", description="Who is here, and who could be")
    async def list_(interaction: discord.Interaction) -> None:
        await say(
            interaction, await commands.describe_scene(manager, caller_of(interaction, manager))
        )

    @group.command(name="info", description="About a character (default: the main one here)")
    @app_commands.describe(name="The character")
    @app_commands.autocomplete(name=names)
    async def info(interaction: discord.Interaction, name: str | None = None) -> None:
        character = (
            manager.characters.get(name)
            if name
            else await manager.character_for(caller_of(interaction, manager).key)
        )
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
        interaction: discord.Interaction, text: app_commands.Range[str, 1, PERSONA_MAX]
    ) -> None:
        caller = caller_of(interaction, manager)
        await say(interaction, await commands.set_persona(manager, caller, text))

    @group.command(name="show", description="Show your persona")
    async def show(interaction: discord.Interaction) -> None:
        caller = caller_of(interaction, manager)
        await say(interaction, await commands.show_persona(manager, caller))

    @group.command(name="clear", description="Clear your persona")
    async def clear(interaction: discord.Interaction) -> None:
        caller = caller_of(interaction, manager)
        await say(interaction, await commands.clear_persona(manager, caller))

    return group


def _memory_group(manager: ConversationManager) -> app_commands.Group:
    group = app_commands.Group(
        name="memory", description="What the character remembers here and about you"
    )

    @group.command(name="show", description="What the character remembers (numbered)")
    async def show(interaction: discord.Interaction) -> None:
        await say(interaction, await commands.show_memory(manager, caller_of(interaction, manager)))

    @group.command(name="forget", description="Make the character forget one item")
    @app_commands.describe(item="The item's number in /memory show")
    async def forget(interaction: discord.Interaction, item: app_commands.Range[int, 1]) -> None:
        caller = caller_of(interaction, manager)
        await say(interaction, await commands.forget_memory(manager, caller, item))

    @group.command(name="fix", description="Correct one item")
    @app_commands.describe(item="The item's number in /memory show", text="What it should say")
    async def fix(
        interaction: discord.Interaction,
        item: app_commands.Range[int, 1],
        text: app_commands.Range[str, 1, SUMMARY_MAX],
    ) -> None:
        caller = caller_of(interaction, manager)
        await say(interaction, await commands.fix_memory(manager, caller, item, text))

    return group


def _single_commands(manager: ConversationManager) -> list[app_commands.Command[Any, ..., None]]:
    @app_commands.command(name="reset", description="Forget this channel's conversation")
    async def reset(interaction: discord.Interaction) -> None:
        caller = caller_of(interaction, manager)
        question = await commands.ask_reset(manager, caller)
        await _ask(interaction, question, lambda: commands.reset(manager, caller))

    @app_commands.command(name="forget-me", description="Erase everything stored about you")
    async def forget_me(interaction: discord.Interaction) -> None:
        caller = caller_of(interaction, manager)
        await _ask(
            interaction,
            commands.FORGET_QUESTION,
            lambda: commands.forget(manager, caller),
        )

    @app_commands.command(name="usage", description="Tokens used and their estimated cost")
    async def usage(interaction: discord.Interaction) -> None:
        server_id = str(interaction.guild.id) if interaction.guild is not None else None
        text = await commands.describe_usage(
            manager, caller_of(interaction, manager), chat_noun="channel", server_id=server_id
        )
        await say(interaction, text)

    return [reset, forget_me, usage]


async def _ask(
    interaction: discord.Interaction,
    question: commands.Question,
    action: Callable[[], Awaitable[str]],
) -> None:
    """Ask ``question`` privately, with buttons that only the asker can press."""
    await interaction.response.send_message(
        question.text, view=Confirm(interaction.user.id, question, action), ephemeral=True
    )
