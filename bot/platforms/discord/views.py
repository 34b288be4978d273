"""Buttons: "are you sure?" before something is erased."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import discord

CONFIRM_ID = "troupe:confirm"
CANCEL_ID = "troupe:cancel"


class Confirm(discord.ui.View):
    """Yes / Cancel for one user; ``action`` runs on Yes and returns what to show instead."""

    def __init__(
        self, user_id: int, action: Callable[[], Awaitable[str]], *, timeout: float = 120.0
    ) -> None:
        super().__init__(timeout=timeout)
        self._user_id = user_id
        self._action = action

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Only the person who asked may answer."""
        if interaction.user.id == self._user_id:
            return True
        await interaction.response.send_message(
            "Only the person who asked can answer this.", ephemeral=True
        )
        return False

    @discord.ui.button(label="Yes, erase", style=discord.ButtonStyle.danger, custom_id=CONFIRM_ID)
    async def confirm(
        self, interaction: discord.Interaction, button: discord.ui.Button[Confirm]
    ) -> None:
        """Do it."""
        self.stop()
        await interaction.response.edit_message(content=await self._action(), view=None)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary, custom_id=CANCEL_ID)
    async def cancel(
        self, interaction: discord.Interaction, button: discord.ui.Button[Confirm]
    ) -> None:
        """Leave everything as it is."""
        self.stop()
        await interaction.response.edit_message(content="Nothing was erased.", view=None)
