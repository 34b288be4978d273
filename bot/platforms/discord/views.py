"""Buttons: "are you sure?" before something is erased."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import discord

from bot.conversation import commands
from bot.conversation.commands import Question
from bot.errors import Refusal

CONFIRM_ID = "troupe:confirm"
CANCEL_ID = "troupe:cancel"


class Confirm(discord.ui.View):
    """Yes / Cancel for one user; ``action`` runs on Yes and returns what to show instead."""

    def __init__(
        self,
        user_id: int,
        question: Question,
        action: Callable[[], Awaitable[str]],
        *,
        timeout: float = 120.0,
    ) -> None:
        super().__init__(timeout=timeout)
        self._user_id = user_id
        self._action = action
        self.confirm.label = question.confirm

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Only the person who asked may answer."""
        if interaction.user.id == self._user_id:
            return True
        await interaction.response.send_message(commands.NOT_YOURS, ephemeral=True)
        return False

    @discord.ui.button(label="Yes", style=discord.ButtonStyle.danger, custom_id=CONFIRM_ID)
    async def confirm(
        self, interaction: discord.Interaction, button: discord.ui.Button[Confirm]
    ) -> None:
        """Do it."""
        self.stop()
        try:
            done = await self._action()
        except Refusal as refusal:
            done = str(refusal)
        await interaction.response.edit_message(content=done, view=None)

    @discord.ui.button(
        label=commands.CANCEL, style=discord.ButtonStyle.secondary, custom_id=CANCEL_ID
    )
    async def cancel(
        self, interaction: discord.Interaction, button: discord.ui.Button[Confirm]
    ) -> None:
        """Leave everything as it is."""
        self.stop()
        await interaction.response.edit_message(content=commands.CANCELLED, view=None)
