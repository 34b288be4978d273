"""Per-chat flood control approximating Telegram's limits on sending and editing.

Telegram asks bots to stay near one message a second in a private chat and 20 a minute in a
group, tolerating short bursts, and answers excess with ``429 Too Many Requests: retry after
N``. :class:`RateLimit` models that as one token bucket per chat, shared by ``sendMessage`` and
``editMessageText``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    """Token-bucket sizes and refill rates (tokens per second) for private chats and groups.

    ``RateLimit()`` approximates Telegram; pass smaller bursts to make tests stricter.
    """

    private_rate: float = 1.0
    private_burst: int = 3
    group_rate: float = 20 / 60
    group_burst: int = 3


class _Bucket:
    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = now

    def take(self, now: float) -> int | None:
        """Spend a token; return None, or the whole seconds to wait when none is left."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return max(1, math.ceil((1 - self.tokens) / self.rate))


class FloodControl:
    """Applies a :class:`RateLimit` to each chat separately."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._buckets: dict[int, _Bucket] = {}

    def check(self, chat_id: int, is_group: bool, now: float) -> int | None:
        """Count one send or edit in ``chat_id``; return ``retry_after`` if over the limit."""
        bucket = self._buckets.get(chat_id)
        if bucket is None:
            limit = self.limit
            rate, burst = (
                (limit.group_rate, limit.group_burst)
                if is_group
                else (limit.private_rate, limit.private_burst)
            )
            bucket = self._buckets[chat_id] = _Bucket(rate, burst, now)
        return bucket.take(now)
