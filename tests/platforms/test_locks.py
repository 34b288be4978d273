"""KeyedLocks: one lock per key, in order, forgotten when nobody uses it."""

from __future__ import annotations

import asyncio

import pytest

from bot.platforms.locks import KeyedLocks


async def test_one_key_runs_one_holder_at_a_time_in_the_order_they_asked() -> None:
    locks: KeyedLocks[int] = KeyedLocks()
    log: list[str] = []

    async def hold(name: str) -> None:
        async with locks.hold(1):
            log.append(f"{name} in")
            await asyncio.sleep(0.01)
            log.append(f"{name} out")

    await asyncio.gather(*(hold(name) for name in "abc"))

    assert log == ["a in", "a out", "b in", "b out", "c in", "c out"]


async def test_different_keys_do_not_wait_for_each_other() -> None:
    locks: KeyedLocks[int] = KeyedLocks()
    inside = asyncio.Event()

    async def first() -> None:
        async with locks.hold(1):
            inside.set()
            await asyncio.sleep(10)

    holder = asyncio.create_task(first())
    await inside.wait()
    async with asyncio.timeout(1):
        async with locks.hold(2):
            pass
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder


async def test_a_lock_is_forgotten_once_nobody_holds_or_waits_for_it() -> None:
    locks: KeyedLocks[int] = KeyedLocks()

    for key in range(1000):
        async with locks.hold(key):
            assert len(locks) == 1

    assert len(locks) == 0


async def test_a_waiter_cancelled_in_line_leaves_no_lock_behind() -> None:
    locks: KeyedLocks[str] = KeyedLocks()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("chat"):
            await release.wait()

    async def waiter() -> None:
        async with locks.hold("chat"):
            pass

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiting = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    assert len(locks) == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release.set()
    await held

    assert len(locks) == 0
    async with asyncio.timeout(1), locks.hold("chat"):
        pass  # and the key is usable again
