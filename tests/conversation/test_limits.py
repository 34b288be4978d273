"""The per-user rate limit, on an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.conversation.incoming import ConversationKey, Incoming
from bot.conversation.limits import LimitGuard
from bot.conversation.policy import Limits
from bot.storage import Conversation, open_storage


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_rate_limit_frees_up_after_a_minute_and_counts_each_user(
    tmp_path: Path,
) -> None:
    storage = await open_storage(f"sqlite:///{tmp_path / 'limits.sqlite3'}")
    clock = Clock()
    guard = LimitGuard(storage, cache_seconds=0, now=lambda: datetime.now(UTC), clock=clock)
    key = ConversationKey("test", "room")
    conversation = Conversation(1, "test", "room", "", "aria", datetime.now(UTC))
    limits = Limits(user_messages_per_minute=2)

    async def refused(author: str, *, admin: bool = False) -> bool:
        incoming = Incoming(key, author, author, "hi", author_is_admin=admin)
        return await guard.check(incoming, conversation, limits) is not None

    try:
        assert [await refused("ann") for _ in range(3)] == [False, False, True]
        assert not await refused("bob")  # each user has their own count
        assert not await refused("ann", admin=True)  # admins are spared
        clock.now += 59.0
        assert await refused("ann")
        clock.now += 1.0  # a minute after ann's first two messages
        assert [await refused("ann") for _ in range(3)] == [False, False, True]
    finally:
        await storage.close()
