"""Per-user rate limits and daily token budgets per user, chat and server.

Budgets are counted from the model calls stored today (UTC), so every process sharing the
database sees the same spending (a few seconds late: sums are cached briefly). The rate limit
counts the messages one process answered in the last minute. Admins are exempt from both.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from bot.conversation.cache import TimedCache
from bot.conversation.incoming import Incoming
from bot.conversation.policy import Limits
from bot.storage import Conversation, Storage

_MINUTE = 60.0


class LimitGuard:
    """Says whether a message may be answered, and if not, why."""

    def __init__(
        self,
        storage: Storage,
        *,
        cache_seconds: float,
        now: Callable[[], datetime],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._storage = storage
        self._now = now
        self._clock = clock
        # Forgotten a minute after a user's last answered message: nothing in it counts then.
        self._answered: TimedCache[tuple[str, str], deque[float]] = TimedCache(_MINUTE, clock=clock)
        self._spent: TimedCache[tuple[str, ...], int] = TimedCache(cache_seconds)

    async def check(
        self, incoming: Incoming, conversation: Conversation, limits: Limits
    ) -> str | None:
        """``None`` if ``incoming`` may be answered, else a plain sentence saying why not."""
        if incoming.author_is_admin:
            return None
        if limits.user_messages_per_minute and not self._admit(incoming, limits):
            return (
                f"You're writing faster than the characters can keep up (at most "
                f"{limits.user_messages_per_minute} messages a minute); wait a little."
            )
        return await self.budget_refusal(conversation, incoming.author_id, limits)

    async def budget_refusal(
        self, conversation: Conversation, author_id: str, limits: Limits
    ) -> str | None:
        """``None`` while ``author_id``, the chat and its server have tokens left today (of
        ``limits``), else a plain sentence saying whose allowance is used up."""
        platform = conversation.platform
        budgets: tuple[tuple[int, str, dict[str, str | None]], ...] = (
            (limits.user_daily_tokens, "You have", {"author_id": author_id}),
            (limits.chat_daily_tokens, "This chat has", {"chat_id": conversation.chat_id}),
            (limits.server_daily_tokens, "This server has", {"server_id": conversation.server_id}),
        )
        for limit, who, scope in budgets:
            if not limit or None in scope.values():
                continue
            if await self._spent_today(platform, scope) >= limit:
                return f"{who} used today's allowance of {limit:,} tokens; it renews at 00:00 UTC."
        return None

    def _admit(self, incoming: Incoming, limits: Limits) -> bool:
        now = self._clock()
        key = (incoming.key.platform, incoming.author_id)
        cached = self._answered.get(key)
        recent = cached[0] if cached is not None else deque()
        while recent and now - recent[0] >= _MINUTE:
            recent.popleft()
        if len(recent) >= limits.user_messages_per_minute:
            return False
        recent.append(now)
        self._answered.put(key, recent)
        return True

    async def _spent_today(self, platform: str, scope: dict[str, str | None]) -> int:
        start = self._now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        key = (platform, start.date().isoformat(), *(f"{k}={v}" for k, v in scope.items()))
        cached = self._spent.get(key)
        if cached is not None:
            return cached[0]
        totals = await self._storage.usage_totals(
            platform=platform,
            since=start,
            author_id=scope.get("author_id"),
            chat_id=scope.get("chat_id"),
            server_id=scope.get("server_id"),
        )
        return self._spent.put(key, totals.total_tokens)
