"""The Discord :class:`~bot.conversation.sink.ReplySink`: a character's reply, streamed.

With Manage Webhooks the character posts through the channel's webhook under its own name
and avatar; without it the bot posts as itself with the character's name in bold, and the
server's admins are told once how to enable the better mode.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TypeVar

import discord
from discord.utils import escape_markdown

from bot.characters.schema import Character
from bot.conversation.sink import DeliveryFailed, SwipeControls
from bot.platforms.discord.swipes import swipe_view
from bot.platforms.discord.transport import NO_PINGS, BotTransport, WebhookTransport
from bot.platforms.discord.webhooks import Webhooks, usable_username, webhook_channel
from bot.platforms.streaming import (
    BudgetBook,
    Buttons,
    MessageTransport,
    Pace,
    Rate,
    StreamingReply,
    WriteBudget,
    WriteRateLimited,
)

log = logging.getLogger("bot.platforms.discord")

_T = TypeVar("_T")

#: What the bot may post or edit in one channel.
CHANNEL_RATE = Rate(5, 5.0)
#: What one webhook may post or edit: its own bucket, and a cap per minute.
WEBHOOK_RATES = (Rate(5, 5.0), Rate(30, 60.0))
#: Writes kept free for a reply's end: its last edit and one more part, or a withdrawal and
#: what the character says instead.
FINAL_WRITES = 2
#: Discord's error code for a channel that no longer exists.
UNKNOWN_CHANNEL = 10003

WEBHOOK_TIP = (
    "Tip for the server's admins: give me the **Manage Webhooks** permission in this channel "
    "and each character will post under its own name and avatar."
)


class DiscordReplies:
    """Makes sinks for channels; owns what they share: webhooks, and the write budgets of
    channels and webhooks. ``edit_interval`` is the least time between two updates of one
    reply while it streams."""

    def __init__(
        self,
        webhooks: Webhooks,
        *,
        edit_interval: float,
        typing_interval: float = 4.5,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.webhooks = webhooks
        self.channel_budgets: BudgetBook[int] = BudgetBook(
            Pace((CHANNEL_RATE,), preview_gap=edit_interval, reserve=FINAL_WRITES), on_wait=on_wait
        )
        self.webhook_budgets: BudgetBook[int] = BudgetBook(
            Pace(WEBHOOK_RATES, preview_gap=edit_interval, reserve=FINAL_WRITES), on_wait=on_wait
        )
        self.typing_interval = typing_interval
        #: Servers whose admins have been told about Manage Webhooks (once per process).
        self._tipped: set[int] = set()

    def sink(self, channel: discord.abc.Messageable) -> DiscordSink:
        """A sink for one turn in ``channel`` (a text channel, thread or DM)."""
        return DiscordSink(self, channel)

    async def transport(
        self, channel: discord.abc.Messageable, character: Character
    ) -> tuple[BotTransport, str]:
        """How ``character`` posts in ``channel``, and the header its first message needs
        (the name in bold when the bot posts as itself)."""
        parent = webhook_channel(channel)
        avatar = None if character.avatar_file is not None else character.avatar
        if parent is not None and usable_username(character.name):
            webhook = await self.webhooks.for_channel(parent)
            if webhook is not None:
                thread = channel if isinstance(channel, discord.Thread) else None
                transport = WebhookTransport(
                    channel, webhook, username=character.name, avatar_url=avatar, thread=thread
                )
                return transport, ""
            await self._tip_once(channel, parent.guild)
        return BotTransport(channel), bold_name(character)

    async def _tip_once(self, channel: discord.abc.Messageable, guild: discord.Guild) -> None:
        if guild.id in self._tipped:
            return
        self._tipped.add(guild.id)
        try:
            await channel.send(WEBHOOK_TIP, allowed_mentions=NO_PINGS)
        except discord.HTTPException:
            log.warning("could not post the Manage Webhooks tip in guild %s", guild.id)


class DiscordSink:
    """One conversation's replies in one Discord channel."""

    def __init__(self, replies: DiscordReplies, channel: discord.abc.Messageable) -> None:
        self._replies = replies
        self._channel = channel
        self._reply: StreamingReply | None = None
        self._character: Character | None = None
        self._transport: BotTransport | None = None
        #: The buttons the next :meth:`finish` puts under the reply (see :meth:`offer_controls`).
        self._controls: discord.ui.View | None = None

    @property
    def _via_webhook(self) -> bool:
        return isinstance(self._transport, WebhookTransport)

    async def begin(self, character: Character) -> None:
        """Pick webhook or bot posting for ``character`` and show typing."""
        await self._start(character)

    async def begin_over(
        self, character: Character, message_ids: Sequence[str], shown: str, *, keep: bool
    ) -> None:
        """Rewrite the reply shown as ``message_ids`` by editing it as the text streams;
        ``keep`` continues ``shown``."""
        await self._start(character, (message_ids, shown, keep))

    async def offer_controls(self, controls: SwipeControls) -> None:
        """Show the swipe buttons under the reply :meth:`finish` shows next: they ride on
        the edit or post that puts its last part up, so they cost no write of their own."""
        self._controls = swipe_view(controls)

    async def _start(
        self, character: Character, over: tuple[Sequence[str], str, bool] | None = None
    ) -> None:
        self._character = character
        transport, header = await self._replies.transport(self._channel, character)
        self._transport = transport
        self._reply = self._streaming(transport, header)
        if over is not None:
            message_ids, shown, keep = over
            self._reply.take_over(message_ids, shown, keep=keep)
        await self._reply.begin()

    async def delta(self, text: str) -> None:
        """More of the reply streamed in."""
        if self._reply is not None:
            await self._reply.delta(text)

    async def finish(self, text: str) -> Sequence[str]:
        """Show exactly ``text``; return the ids of the messages it takes. Raises
        :class:`DeliveryFailed` when Discord did not take it (permanent where the channel
        refuses the bot)."""
        if self._reply is None:
            raise RuntimeError("finish() before begin()")
        controls, self._controls = self._controls, None

        def buttons() -> Buttons[discord.ui.View] | None:
            # Built per attempt: a failed webhook post is retried as the bot.
            transport = self._transport
            if controls is None or transport is None:
                return None
            return Buttons(transport, controls)

        with self._delivery("reply"):
            ids = await self._guarded(lambda reply: reply.finish(text, buttons()))
        return ids or []

    async def retract(self, replacement: str | None = None) -> None:
        """Take down what was shown; post ``replacement`` instead when given."""
        await self._guarded(lambda reply: reply.retract(replacement))

    async def _guarded(self, step: Callable[[StreamingReply], Awaitable[_T]]) -> _T | None:
        """Run the last ``step`` of a reply; if our webhook fails (someone deleted it, or
        took Manage Webhooks away), take down its part and post as the bot instead."""
        reply, character = self._reply, self._character
        if reply is None or character is None:
            return None
        try:
            return await step(reply)
        except discord.HTTPException as error:
            if not self._via_webhook:
                raise
            log.warning("webhook post failed (%s); posting as the bot", error)
            with contextlib.suppress(discord.HTTPException):
                await reply.retract()
            self._forget_webhook()
            self._transport = BotTransport(self._channel)
            self._reply = self._streaming(self._transport, bold_name(character))
            return await step(self._reply)

    async def notice(self, text: str) -> None:
        """Post a short plain notice from the bot; :class:`DeliveryFailed` when Discord did
        not take it."""
        with self._delivery("notice"):
            await self._channel.send(text, allowed_mentions=NO_PINGS)

    @contextlib.contextmanager
    def _delivery(self, what: str) -> Iterator[None]:
        """Discord's refusals, after discord.py's and the streaming code's retries, as
        :class:`DeliveryFailed`."""
        channel = _channel_id(self._channel)
        try:
            yield
        except discord.Forbidden as error:
            guild = getattr(self._channel, "guild", None)
            if guild is None:  # a DM: the user blocked the bot or takes no DMs (50007)
                log.info("Discord refused a %s in DM %s: %s", what, channel, error.text or error)
                raise DeliveryFailed(f"DM {channel} refuses the bot", permanent=True) from None
            # Nothing can be said in the channel itself: tell whoever runs the bot.
            log.warning(
                "Discord refused a %s in #%s (server %s): %s. Give the bot's role Send "
                "Messages (and Send Messages in Threads) there.",
                what,
                getattr(self._channel, "name", None) or channel,
                guild.id if guild is not None else None,
                error.text or error,
            )
            raise DeliveryFailed(f"channel {channel} refuses the bot", permanent=True) from None
        except discord.NotFound as error:
            gone = error.code == UNKNOWN_CHANNEL
            raise DeliveryFailed(f"{what} in channel {channel}: {error}", permanent=gone) from None
        except (discord.HTTPException, WriteRateLimited, OSError) as error:
            raise DeliveryFailed(f"Discord did not take the {what} in {channel}: {error}") from None

    def _budget(self, transport: MessageTransport) -> WriteBudget:
        """The writes left to ``transport``: its webhook's, or the channel's."""
        if isinstance(transport, WebhookTransport):
            return self._replies.webhook_budgets.for_chat(transport.webhook_id)
        return self._replies.channel_budgets.for_chat(_channel_id(self._channel))

    def _streaming(self, transport: MessageTransport, header: str) -> StreamingReply:
        return StreamingReply(
            transport,
            self._budget(transport),
            header=header,
            typing_interval=self._replies.typing_interval,
        )

    def _forget_webhook(self) -> None:
        parent = webhook_channel(self._channel)
        if parent is not None:
            self._replies.webhooks.forget(parent.id)


def bold_name(character: Character) -> str:
    """The header of a message the bot posts for ``character``: its name in bold."""
    return f"**{escape_markdown(character.name)}**\n"


def _channel_id(channel: discord.abc.Messageable) -> int:
    channel_id: int = getattr(channel, "id", 0)
    return channel_id
