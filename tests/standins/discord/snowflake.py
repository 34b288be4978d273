"""Snowflake ids the way Discord makes them: milliseconds since 2015 in the top bits."""

from __future__ import annotations

import time

DISCORD_EPOCH_MS = 1_420_070_400_000


def shard_for(guild_id: int, shard_count: int) -> int:
    """The shard that receives a guild's events: ``(guild_id >> 22) % shard_count``."""
    return (guild_id >> 22) % shard_count


class SnowflakeFactory:
    """Hands out unique, increasing snowflakes.

    Each id takes the next millisecond, so ids are strictly increasing and their timestamps stay
    close to the wall clock; ``next_id(shard=(k, n))`` skips ahead until the id lands on shard
    ``k`` of ``n``, which is how tests put a guild on a chosen shard.
    """

    def __init__(self) -> None:
        self._last_ms = int(time.time() * 1000) - DISCORD_EPOCH_MS

    def next_id(self, *, shard: tuple[int, int] | None = None) -> int:
        """Return a new snowflake, on shard ``shard[0]`` of ``shard[1]`` when given."""
        while True:
            self._last_ms = max(self._last_ms + 1, int(time.time() * 1000) - DISCORD_EPOCH_MS)
            snowflake = self._last_ms << 22
            if shard is None or shard_for(snowflake, shard[1]) == shard[0]:
                return snowflake
