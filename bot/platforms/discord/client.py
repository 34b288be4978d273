"""The discord.py client that runs Troupe's characters: intents, sharding, start-up checks.

:func:`create_client` picks :class:`TroupeClient` (one connection) or
:class:`ShardedTroupeClient` (discord.py's ``AutoShardedClient``, for bots in thousands of
servers) from the configuration.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.conversation.incoming import ConversationKey
from bot.conversation.manager import ConversationManager
from bot.conversation.swipes import SwipeAction
from bot.observability.delivery import DeliveryMonitor
from bot.platforms.discord.commands import install_commands
from bot.platforms.discord.config import DiscordConfig
from bot.platforms.discord.delivery import report_requests
from bot.platforms.discord.events import PLATFORM, MessageEvents
from bot.platforms.discord.invite import invite_url
from bot.platforms.discord.moderation import ModerationReporter
from bot.platforms.discord.permissions import (
    MESSAGE_CONTENT_MISSING,
    channel_problems,
    has_message_content,
)
from bot.platforms.discord.presses import swipe_pressed
from bot.platforms.discord.sink import DiscordReplies, DiscordSink
from bot.platforms.discord.swipes import SwipeButton
from bot.platforms.discord.transport import NO_PINGS
from bot.platforms.discord.webhooks import Webhooks

log = logging.getLogger("bot.platforms.discord")

Report = Callable[[str], None]


def print_now(line: str) -> None:
    """The default report: standard output, flushed (logs of containers show it at once)."""
    print(line, flush=True)


class DiscordSetupError(RuntimeError):
    """The bot cannot run as configured; the message says what to change, in plain words."""


def troupe_intents() -> discord.Intents:
    """Guilds, guild and direct messages, and their content (a privileged intent); nothing
    else, so that a bot in thousands of servers is not flooded with typing or voice events."""
    return discord.Intents(guilds=True, guild_messages=True, dm_messages=True, message_content=True)


@contextmanager
def pointed_at(config: DiscordConfig) -> Iterator[None]:
    """Point discord.py's REST and gateway URLs at ``config``'s (a rate-limit proxy or a
    stand-in) for the duration; discord.py reads both from process-wide class attributes."""
    saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    if config.api_base_url:
        Route.BASE = config.api_base_url.rstrip("/")
    if config.gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(config.gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


class TroupeClient(discord.Client):
    """A discord.py client whose messages and slash commands go to the conversation engine.

    ``report`` receives what the person running the bot should read at start (the invite
    link, missing permissions); ``delivery`` how each request to Discord ended. Extra
    ``options`` go to :class:`discord.Client` (an ``http_trace`` keeps working).
    """

    def __init__(
        self,
        manager: ConversationManager,
        config: DiscordConfig,
        *,
        report: Report = print_now,
        delivery: DeliveryMonitor | None = None,
        **options: Any,
    ) -> None:
        #: How requests to Discord end, for ``/healthz``.
        self.delivery = delivery or DeliveryMonitor(PLATFORM)
        super().__init__(
            intents=troupe_intents(),
            guild_ready_timeout=config.guild_ready_timeout,
            allowed_mentions=NO_PINGS,
            http_trace=report_requests(self.delivery, options.pop("http_trace", None)),
            **options,
        )
        self.manager = manager
        self.config = config
        self.report = report
        self.webhooks = Webhooks(self)
        self.replies = DiscordReplies(
            self.webhooks,
            edit_interval=config.edit_interval,
            typing_interval=config.typing_interval,
            on_wait=partial(manager.metrics.platform_wait, PLATFORM),
        )
        self.messages = MessageEvents(self, manager, self.replies)
        self.tree: app_commands.CommandTree[TroupeClient] = app_commands.CommandTree(self)
        install_commands(self.tree, manager, self.replies)
        # The buttons under replies, whichever process posted them.
        self.add_dynamic_items(SwipeButton)
        self._reported = False
        self._stop_reporting: Callable[[], None] | None = manager.add_moderation_hook(
            ModerationReporter(self)
        )

    async def setup_hook(self) -> None:
        """After login, before connecting: check the intent, register slash commands."""
        info = await self.application_info()
        if not has_message_content(info.flags):
            raise DiscordSetupError(MESSAGE_CONTENT_MISSING)
        await self.tree.sync()

    async def on_ready(self) -> None:
        """Resume the turns owed (a restart, a crash); print the invite link and what is
        missing, once per process."""
        self.manager.resume_with(PLATFORM, self.resumed_sink)
        if self._reported or self.application_id is None:
            return
        self._reported = True
        self.report(
            f"Discord: logged in as {self.user}. Invite link: {invite_url(self.application_id)}"
        )
        for guild in self.guilds:
            for problem in channel_problems(guild):
                self.report(f"Discord: {problem}")

    async def resumed_sink(self, key: ConversationKey) -> DiscordSink | None:
        """A sink for a turn resumed in ``key``'s channel, thread or DM; ``None`` if gone."""
        channel_id = int(key.thread_id or key.chat_id)
        channel = self.get_channel(channel_id)
        if channel is None:
            try:
                channel = await self.fetch_channel(channel_id)
            except (discord.NotFound, discord.Forbidden):
                return None
        if not isinstance(channel, discord.abc.Messageable):
            return None
        return self.replies.sink(channel)

    async def on_swipe(
        self, interaction: discord.Interaction[Any], action: SwipeAction, message_id: int
    ) -> None:
        """A swipe button under a reply was pressed (see :class:`SwipeButton`)."""
        await swipe_pressed(interaction, action, message_id, self.manager, self.replies)

    async def on_message(self, message: discord.Message) -> None:
        """Every new message goes to the engine (which decides whether to answer)."""
        await self.messages.on_message(message)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """A user's edit is reflected in the history."""
        await self.messages.on_raw_message_edit(payload)

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        """A deletion is reflected in the history."""
        await self.messages.on_raw_message_delete(payload)

    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        """A bulk deletion is reflected in the history."""
        await self.messages.on_raw_bulk_message_delete(payload)

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        """Log and carry on: one bad event never stops the bot."""
        log.exception("error in Discord event %s", event_method)

    async def close(self) -> None:
        """Let replies in flight finish, then disconnect."""
        await self.messages.drain()
        if self._stop_reporting is not None:
            self._stop_reporting()
            self._stop_reporting = None
        await super().close()


class ShardedTroupeClient(TroupeClient, discord.AutoShardedClient):
    """:class:`TroupeClient` over several gateway connections (shards)."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Pace shard IDENTIFYs: discord.py's 5 s, or the configured ``identify_delay``."""
        delay = self.config.identify_delay
        if delay is None:
            await super().before_identify_hook(shard_id, initial=initial)
        elif not initial:
            await asyncio.sleep(delay)


def create_client(
    manager: ConversationManager,
    config: DiscordConfig,
    *,
    report: Report = print_now,
    **options: Any,
) -> TroupeClient:
    """The client ``config`` asks for: sharded (a count, or automatic) or a single connection."""
    if not config.sharded:
        return TroupeClient(manager, config, report=report, **options)
    return ShardedTroupeClient(
        manager,
        config,
        report=report,
        shard_count=config.shard_count,
        shard_ids=list(config.shard_ids) if config.shard_ids is not None else None,
        **options,
    )
