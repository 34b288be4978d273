"""The Discord adapter's settings, from the ``discord`` section of
:class:`~bot.settings.Settings`."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.settings import DEFAULT_DISCORD_EDIT_INTERVAL, ConfigError, DiscordSettings


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
    edit_interval: float = DEFAULT_DISCORD_EDIT_INTERVAL
    #: How often the typing indicator is renewed until the first text shows.
    typing_interval: float = 4.5

    @property
    def sharded(self) -> bool:
        """Whether the adapter runs discord.py's sharded client."""
        return self.auto_shard or self.shard_count is not None

    @classmethod
    def from_settings(cls, settings: DiscordSettings) -> DiscordConfig:
        """The adapter's settings; :class:`ConfigError` when ``DISCORD_TOKEN`` is not set."""
        if settings.token is None:
            raise ConfigError("DISCORD_TOKEN is not set")
        auto = settings.shard_count == "auto"
        return cls(
            token=settings.token.get_secret_value(),
            api_base_url=settings.api_base_url,
            gateway_url=settings.gateway_url,
            shard_count=None if settings.shard_count == "auto" else settings.shard_count,
            auto_shard=auto,
            shard_ids=settings.shard_ids,
            guild_ready_timeout=settings.guild_ready_timeout,
            identify_delay=settings.identify_delay,
            edit_interval=settings.edit_interval,
        )
