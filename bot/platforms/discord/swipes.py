"""The buttons under a character's newest reply: ◀ 2/3 ▶, regenerate, continue.

Each button's custom id names the action and the stored message (``swipe:regen:42``), and
:class:`SwipeButton` is a discord.py :class:`~discord.ui.DynamicItem` registered on the
client, so a button works whatever process posted it, after any restart. A press is
acknowledged at once (the reply itself shows the result); a refusal (too late, not theirs, a
limit) is an ephemeral answer to the one who pressed, and too late also takes the buttons away.
"""

from __future__ import annotations

import re
from typing import Any, Protocol, cast

import discord

from bot.conversation import commands
from bot.conversation.sink import SwipeControls
from bot.conversation.swipes import SwipeAction

#: The custom id of the "2/3" label, which is never pressed (it is disabled).
SHOWN_ID = "swipe:shown"


class SwipeHandler(Protocol):
    """The client's side of a press (:meth:`TroupeClient.on_swipe`)."""

    async def on_swipe(
        self, interaction: discord.Interaction[Any], action: SwipeAction, message_id: int
    ) -> None:
        """Do ``action`` to the reply ``message_id`` for whoever pressed."""


class SwipeButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.compile(r"swipe:(?P<action>regen|prev|next|cont):(?P<message>[0-9]+)"),
):
    """One swipe button; rebuilt from its custom id when pressed."""

    def __init__(self, action: SwipeAction, message_id: int) -> None:
        style = discord.ButtonStyle.primary
        if action in (SwipeAction.PREVIOUS, SwipeAction.NEXT):
            style = discord.ButtonStyle.secondary
        super().__init__(
            discord.ui.Button(
                label=commands.LABELS[action],
                style=style,
                custom_id=commands.swipe_data(action, message_id),
            )
        )
        self.action = action
        self.message_id = message_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[discord.Client],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> SwipeButton:
        """The button a custom id stands for."""
        return cls(SwipeAction(match["action"]), int(match["message"]))

    async def callback(self, interaction: discord.Interaction[discord.Client]) -> None:
        """Do the action on the reply, for whoever pressed."""
        handler = cast(SwipeHandler, interaction.client)
        await handler.on_swipe(interaction, self.action, self.message_id)


def swipe_view(controls: SwipeControls) -> discord.ui.View | None:
    """The buttons for ``controls``; ``None`` when there is nothing to offer."""
    view = discord.ui.View(timeout=None)
    if controls.count > 1:
        view.add_item(SwipeButton(SwipeAction.PREVIOUS, controls.message_id))
        view.add_item(discord.ui.Button(label=controls.label, custom_id=SHOWN_ID, disabled=True))
        view.add_item(SwipeButton(SwipeAction.NEXT, controls.message_id))
    if controls.generated:
        view.add_item(SwipeButton(SwipeAction.REGENERATE, controls.message_id))
        view.add_item(SwipeButton(SwipeAction.CONTINUE, controls.message_id))
    return view if view.children else None
