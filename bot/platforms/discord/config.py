"""The Discord adapter's settings, read from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.config import ConfigError, env_seconds

#: Seconds between two sends or edits in one channel while streaming. Discord allows about
#: five message operations per five seconds per channel; this stays under that.
DEFAULT_EDIT_INTERVAL = 1.2


@dataclass(frozen=True, slots=True)
class DiscordConfig:
    """How to reach Discord and how to behave there.

    ``shard_count`` ``None`` with ``auto_shard`` asks Discord for the recommended count;
    both unset runs one unsharded connection.
    """

    token: str = field(repr=False)
    #: REST base such as ``https://discord.com/api/v10`` (``None``: discord.py's default).
    api_base_url: str | None = None
    #: Gateway websocket such as ``wss://gateway.discord.gg/`` (``None``: discord.py's default).
    gateway_url: str | None = None
    shard_count: int | None = None
    auto_shard: bool = False
    shard_ids: tuple[int, ...] | None = None
    #: discord.py waits this long after the last GUILD_CREATE before it is ready.
    guild_ready_timeout: float = 2.0
    #: Pause between two shards' IDENTIFY (``None``: discord.py's 5 s, Discord's own limit).
    identify_delay: float | None = None
    edit_interval: float = DEFAULT_EDIT_INTERVAL
    #: How often the typing indicator is renewed until the first text shows.
    typing_interval: float = 4.5

    @property
    def sharded(self) -> bool:
        """Whether the adapter runs discord.py's sharded client."""
        return self.auto_shard or self.shard_count is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DiscordConfig:
        """Read ``DISCORD_TOKEN``, ``DISCORD_API_BASE_URL``, ``DISCORD_GATEWAY_URL``,
        ``DISCORD_SHARD_COUNT`` (a number or ``auto``), ``DISCORD_SHARD_IDS`` (e.g. ``0,1``),
        and in seconds ``DISCORD_EDIT_INTERVAL``, ``DISCORD_GUILD_READY_TIMEOUT`` and
        ``DISCORD_IDENTIFY_DELAY``."""
        token = environ.get("DISCORD_TOKEN", "").strip()
        if not token:
            raise ConfigError("DISCORD_TOKEN is not set")
        count_text = environ.get("DISCORD_SHARD_COUNT", "").strip().lower()
        auto = count_text == "auto"
        count = None if auto or not count_text else _positive_int("DISCORD_SHARD_COUNT", count_text)
        ids_text = environ.get("DISCORD_SHARD_IDS", "").strip()
        ids = None
        if ids_text:
            if count is None:
                raise ConfigError("DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT set to a number")
            ids = tuple(_shard_id(part, count) for part in ids_text.split(","))
        return cls(
            token=token,
            guild_ready_timeout=env_seconds(environ, "DISCORD_GUILD_READY_TIMEOUT", 2.0),
            identify_delay=(
                env_seconds(environ, "DISCORD_IDENTIFY_DELAY", 5.0)
                if environ.get("DISCORD_IDENTIFY_DELAY")
                else None
            ),
            api_base_url=environ.get("DISCORD_API_BASE_URL") or None,
            gateway_url=environ.get("DISCORD_GATEWAY_URL") or None,
            shard_count=count,
            auto_shard=auto,
            shard_ids=ids,
            edit_interval=env_seconds(environ, "DISCORD_EDIT_INTERVAL", DEFAULT_EDIT_INTERVAL),
        )


def _positive_int(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number or 'auto', got {text!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1")
    return value


def _shard_id(text: str, count: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ConfigError(f"DISCORD_SHARD_IDS must be numbers, got {text.strip()!r}") from None
    if not 0 <= value < count:
        raise ConfigError(f"shard id {value} is outside 0..{count - 1}")
    return value
