"""The Discord adapter: characters in Discord channels, threads and DMs (discord.py 2).

discord.py is imported only inside this package. :func:`run_discord` is what ``troupe run``
starts when ``DISCORD_TOKEN`` is set (see :mod:`bot.platforms.registry`).
"""

from __future__ import annotations

from typing import Any

from bot.conversation.services import PlatformServices
from bot.platforms.discord.client import (
    DiscordSetupError,
    ShardedTroupeClient,
    TroupeClient,
    create_client,
    pointed_at,
)
from bot.platforms.discord.config import DiscordConfig
from bot.platforms.discord.invite import invite_url
from bot.platforms.discord.moderation import BrokenCharactersReporter
from bot.settings import ConfigError, Settings

__all__ = [
    "ConfigError",
    "DiscordConfig",
    "DiscordSetupError",
    "ShardedTroupeClient",
    "TroupeClient",
    "create_client",
    "invite_url",
    "run_discord",
]


async def run_discord(services: PlatformServices, settings: Settings, **options: Any) -> None:
    """Run the Discord bot on ``services`` until it is cancelled or Discord closes for good.

    Reads :class:`DiscordConfig` from ``settings``; raises :class:`ConfigError` or
    :class:`DiscordSetupError` with a plain-words explanation when it cannot run. ``options``
    go to :func:`create_client` (``report=``, and discord.py client options).
    """
    config = DiscordConfig.from_settings(settings.discord)
    with pointed_at(config):
        client = create_client(services.manager, config, delivery=services.delivery, **options)
        services.on_broken_characters(BrokenCharactersReporter(client, services.manager))
        async with client:
            await client.start(config.token)
