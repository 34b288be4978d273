"""The Discord adapter: characters in Discord channels, threads and DMs (discord.py 2).

discord.py is imported only inside this package. :func:`run_discord` is what ``troupe run``
starts when ``DISCORD_TOKEN`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from bot.app import Engine
from bot.config import ConfigError
from bot.platforms.discord.client import (
    DiscordSetupError,
    ShardedTroupeClient,
    TroupeClient,
    create_client,
    pointed_at,
)
from bot.platforms.discord.config import DiscordConfig
from bot.platforms.discord.events import PLATFORM
from bot.platforms.discord.invite import invite_url
from bot.platforms.discord.moderation import BrokenCharactersReporter

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


async def run_discord(
    engine: Engine, environ: Mapping[str, str] = os.environ, **options: Any
) -> None:
    """Run the Discord bot on ``engine`` until it is cancelled or Discord closes for good.

    Reads :class:`DiscordConfig` from ``environ``; raises :class:`ConfigError` or
    :class:`DiscordSetupError` with a plain-words explanation when it cannot run. ``options``
    go to :func:`create_client` (``report=``, and discord.py client options).
    """
    config = DiscordConfig.from_env(environ)
    with pointed_at(config):
        delivery = engine.delivery.for_platform(PLATFORM)
        client = create_client(engine.manager, config, delivery=delivery, **options)
        engine.watcher.add_error_hook(BrokenCharactersReporter(client, engine.manager))
        async with client:
            await client.start(config.token)
