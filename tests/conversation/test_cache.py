"""The expiring cache the manager keeps conversations and settings in."""

from __future__ import annotations

from bot.conversation.cache import TimedCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_and_a_cached_none_is_a_hit() -> None:
    clock = Clock()
    cache: TimedCache[str, int | None] = TimedCache(10, clock=clock)
    cache.put("a", 1)
    cache.put("nothing", None)
    assert cache.get("a") == (1,)
    assert cache.get("nothing") == (None,)
    clock.now = 10.5
    assert cache.get("a") is None
    cache.drop("nothing")
    assert cache.get("nothing") is None


def test_expired_entries_do_not_pile_up() -> None:
    clock = Clock()
    cache: TimedCache[int, int] = TimedCache(10, clock=clock)
    for minute in range(100):
        clock.now = minute * 60.0
        for n in range(1000):
            cache.put(minute * 1000 + n, n)  # a thousand new chats every minute
    # Only the recent ones are worth keeping; 100,000 were put.
    assert len(cache) <= 3000
    assert cache.get(99 * 1000 + 5) == (5,)


def test_an_entry_may_keep_for_its_own_time() -> None:
    clock = Clock()
    cache: TimedCache[str, int] = TimedCache(10, clock=clock)
    cache.put("short", 1, seconds=2)
    cache.put("long", 2, seconds=100)
    clock.now = 5.0
    assert cache.get("short") is None
    clock.now = 99.0
    assert cache.get("long") == (2,)
    clock.now = 100.5
    assert cache.get("long") is None
